// The {{name}} tool: each exports_* function implements a function of the WIT world's, with the
// types wit-bindgen-c generates into {{c_name}}.h. Arguments are owned by the callee.
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "{{c_name}}.h"

bool exports_{{c_name}}_greet({{c_name}}_string_t *name, {{c_name}}_string_t *ret,
                         {{c_name}}_string_t *err) {
  bool blank = true;
  for (size_t i = 0; i < name->len; i++) {
    if (!isspace(name->ptr[i])) {
      blank = false;
      break;
    }
  }
  if (blank) {
    {{c_name}}_string_free(name);
    {{c_name}}_string_dup(err, "the name is empty");
    return false;
  }
  static const char hello[] = "Hello, ";
  size_t len = strlen(hello) + name->len + 1;
  uint8_t *text = malloc(len);
  memcpy(text, hello, strlen(hello));
  memcpy(text + strlen(hello), name->ptr, name->len);
  text[len - 1] = '!';
  ret->ptr = text;
  ret->len = len;

  {{c_name}}_string_t line;
  {{c_name}}_string_set(&line, "greeting a caller");
  harness_tool_log_write(HARNESS_TOOL_LOG_LEVEL_INFO, &line);
  {{c_name}}_string_free(name);
  return true;
}

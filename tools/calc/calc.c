// The calculator tool: typed functions over numbers, written against the bindings that
// wit-bindgen-c generates from wit/world.wit.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calc.h"

static void log_line(harness_tool_log_level_t level, const char *text) {
  calc_string_t message;
  calc_string_set(&message, text);
  harness_tool_log_write(level, &message);
}

static void set_overflow(calc_calc_error_t *err, const char *where) {
  err->tag = CALC_CALC_ERROR_OVERFLOW;
  calc_string_dup(&err->val.overflow, where);
}

bool exports_calc_apply(calc_op_t op, double a, double b, double *ret, calc_calc_error_t *err) {
  switch (op) {
    case CALC_OP_ADD: *ret = a + b; break;
    case CALC_OP_SUB: *ret = a - b; break;
    case CALC_OP_MUL: *ret = a * b; break;
    case CALC_OP_DIV:
      if (b == 0.0) {
        log_line(HARNESS_TOOL_LOG_LEVEL_WARN, "division by zero refused");
        err->tag = CALC_CALC_ERROR_DIVISION_BY_ZERO;
        return false;
      }
      *ret = a / b;
      break;
  }
  if (isinf(*ret)) {
    set_overflow(err, "the result is beyond the range of f64");
    return false;
  }
  return true;
}

bool exports_calc_sum(calc_list_s64_t *values, int64_t *ret, calc_calc_error_t *err) {
  int64_t total = 0;
  bool ok = true;
  for (size_t i = 0; i < values->len && ok; i++) {
    if (__builtin_add_overflow(total, values->ptr[i], &total)) {
      char where[64];
      snprintf(where, sizeof where, "adding item %zu", i);
      set_overflow(err, where);
      ok = false;
    }
  }
  calc_list_s64_free(values);
  *ret = total;
  return ok;
}

bool exports_calc_range(calc_list_f64_t *values, calc_tuple2_f64_f64_t *ret) {
  if (values->len == 0) {
    calc_list_f64_free(values);
    return false;
  }
  ret->f0 = ret->f1 = values->ptr[0];
  for (size_t i = 1; i < values->len; i++) {
    if (values->ptr[i] < ret->f0) ret->f0 = values->ptr[i];
    if (values->ptr[i] > ret->f1) ret->f1 = values->ptr[i];
  }
  calc_list_f64_free(values);
  return true;
}

// The text tool: string utilities exercising records, variants, flags, options, lists and
// tuples, written against the bindings that wit-bindgen-c generates from wit/world.wit.
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

static bool is_space(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static void copy_into(text_string_t *dst, const uint8_t *src, size_t len) {
  dst->ptr = malloc(len ? len : 1);
  memcpy(dst->ptr, src, len);
  dst->len = len;
}

void exports_text_transform(text_string_t *input, text_style_t style, text_string_t *ret) {
  size_t start = 0, end = input->len;
  if (style & TEXT_STYLE_TRIM) {
    while (start < end && is_space(input->ptr[start])) start++;
    while (end > start && is_space(input->ptr[end - 1])) end--;
  }
  copy_into(ret, input->ptr + start, end - start);
  if (style & TEXT_STYLE_UPPER) {
    for (size_t i = 0; i < ret->len; i++) ret->ptr[i] = (uint8_t)toupper(ret->ptr[i]);
  }
  if (style & TEXT_STYLE_REVERSE) {
    for (size_t i = 0, j = ret->len; i + 1 < j; i++, j--) {
      uint8_t t = ret->ptr[i];
      ret->ptr[i] = ret->ptr[j - 1];
      ret->ptr[j - 1] = t;
    }
  }
  text_string_free(input);
}

void exports_text_stats(text_string_t *input, text_stats_t *ret) {
  memset(ret, 0, sizeof *ret);
  ret->bytes = (uint32_t)input->len;
  size_t best_start = 0, best_len = 0;
  for (size_t i = 0; i < input->len;) {
    if (is_space(input->ptr[i])) {
      if (input->ptr[i] == '\n') ret->lines++;
      i++;
      continue;
    }
    size_t start = i;
    while (i < input->len && !is_space(input->ptr[i])) i++;
    ret->words++;
    if (i - start > best_len) {
      best_start = start;
      best_len = i - start;
    }
  }
  if (input->len > 0 && input->ptr[input->len - 1] != '\n') ret->lines++;
  if (best_len > 0) {
    ret->longest_word.is_some = true;
    copy_into(&ret->longest_word.val, input->ptr + best_start, best_len);
  }
  text_string_free(input);
}

static bool matches(const text_pattern_t *pattern, const uint8_t *word, size_t len) {
  switch (pattern->tag) {
    case TEXT_PATTERN_EXACT:
      return len == pattern->val.exact.len && memcmp(word, pattern->val.exact.ptr, len) == 0;
    case TEXT_PATTERN_PREFIX:
      return len >= pattern->val.prefix.len && memcmp(word, pattern->val.prefix.ptr, pattern->val.prefix.len) == 0;
    default:
      for (size_t i = 0; i < len; i++)
        if (isdigit(word[i])) return true;
      return false;
  }
}

void exports_text_find(text_string_t *input, text_pattern_t *pattern, uint8_t *maybe_limit,
                       text_list_tuple2_u32_string_t *ret) {
  size_t limit = maybe_limit ? *maybe_limit : 10;
  ret->ptr = malloc(sizeof(text_tuple2_u32_string_t) * (limit ? limit : 1));
  ret->len = 0;
  for (size_t i = 0; i < input->len && ret->len < limit;) {
    if (is_space(input->ptr[i])) {
      i++;
      continue;
    }
    size_t start = i;
    while (i < input->len && !is_space(input->ptr[i])) i++;
    if (matches(pattern, input->ptr + start, i - start)) {
      text_tuple2_u32_string_t *hit = &ret->ptr[ret->len++];
      hit->f0 = (uint32_t)start;
      copy_into(&hit->f1, input->ptr + start, i - start);
    }
  }
  text_pattern_free(pattern);
  text_string_free(input);
}

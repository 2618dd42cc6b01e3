/* text-codec.h — the two character helpers the literal decoders share (pickle's
 * STRING/UNICODE opcodes, numpy's header literal): a hex digit's value and the
 * UTF-8 encoding of a code point. Pure functions, no input is trusted here. */
#ifndef MODELGATE_TEXT_CODEC_H
#define MODELGATE_TEXT_CODEC_H

#include <stddef.h>
#include <stdint.h>

/* 0..15, or -1 for anything that is not a hex digit. */
static inline int hex_digit_value(int c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* Writes cp (<= 0x10ffff) as 1-4 UTF-8 bytes into out; returns the count. */
static inline size_t utf8_encode(uint32_t cp, uint8_t out[static 4]) {
        if (cp < 0x80) {
                out[0] = (uint8_t) cp;
                return 1;
        }
        if (cp < 0x800) {
                out[0] = (uint8_t) (0xc0 | cp >> 6);
                out[1] = (uint8_t) (0x80 | (cp & 0x3f));
                return 2;
        }
        if (cp < 0x10000) {
                out[0] = (uint8_t) (0xe0 | cp >> 12);
                out[1] = (uint8_t) (0x80 | ((cp >> 6) & 0x3f));
                out[2] = (uint8_t) (0x80 | (cp & 0x3f));
                return 3;
        }
        out[0] = (uint8_t) (0xf0 | cp >> 18);
        out[1] = (uint8_t) (0x80 | ((cp >> 12) & 0x3f));
        out[2] = (uint8_t) (0x80 | ((cp >> 6) & 0x3f));
        out[3] = (uint8_t) (0x80 | (cp & 0x3f));
        return 4;
}

#endif

/* md5_short.c - MD5 (RFC 1321) of one-block inputs; see md5_short.h. */
#include "strategies/distribution/md5_short.h"

#include <string.h>

/* floor(abs(sin(i + 1)) * 2^32) */
static const uint32_t K[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
};

/* The per-round left rotations. */
static const uint8_t S[4][4] = {{7, 12, 17, 22}, {5, 9, 14, 20}, {4, 11, 16, 23}, {6, 10, 15, 21}};

static uint32_t rotl(uint32_t x, unsigned n)
{
    return (x << n) | (x >> (32 - n));
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

int md5_short(const unsigned char *data, size_t len, unsigned char digest[16])
{
    if (len > MD5_SHORT_MAX)
        return -1;
    /* The one block: the message, the 0x80 byte, zeros, and the length in
     * bits (little-endian) in the last 8 bytes. */
    unsigned char block[64] = {0};
    if (len)
        memcpy(block, data, len);
    block[len] = 0x80;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++)
        block[56 + i] = (unsigned char)(bits >> (8 * i));
    uint32_t M[16];
    for (int i = 0; i < 16; i++)
        M[i] = le32(block + 4 * i);

    uint32_t a = 0x67452301, b = 0xefcdab89, c = 0x98badcfe, d = 0x10325476;
    /* The 64 steps written out: a loop with the round chosen per step
     * cost half again as much. */
#define MD5_STEP(F, w, x, y, z, i, g, s) w = x + rotl(w + F(x, y, z) + K[i] + M[g], s)
#define MD5_F(x, y, z) ((z) ^ ((x) & ((y) ^ (z))))
#define MD5_G(x, y, z) ((y) ^ ((z) & ((x) ^ (y))))
#define MD5_H(x, y, z) ((x) ^ (y) ^ (z))
#define MD5_I(x, y, z) ((y) ^ ((x) | ~(z)))
#define MD5_ROUND(F, r, g0, dg)                                                                    \
    _Pragma("GCC unroll 4") for (unsigned i = 16 * (r), g = (g0); i < 16 * (r) + 16;               \
                                 i += 4, g = (g + 4 * (dg)) % 16)                                  \
    {                                                                                              \
        MD5_STEP(F, a, b, c, d, i, g, S[r][0]);                                                    \
        MD5_STEP(F, d, a, b, c, i + 1, (g + (dg)) % 16, S[r][1]);                                  \
        MD5_STEP(F, c, d, a, b, i + 2, (g + 2 * (dg)) % 16, S[r][2]);                              \
        MD5_STEP(F, b, c, d, a, i + 3, (g + 3 * (dg)) % 16, S[r][3]);                              \
    }
    MD5_ROUND(MD5_F, 0, 0, 1)
    MD5_ROUND(MD5_G, 1, 1, 5)
    MD5_ROUND(MD5_H, 2, 5, 3)
    MD5_ROUND(MD5_I, 3, 0, 7)
#undef MD5_ROUND
#undef MD5_I
#undef MD5_H
#undef MD5_G
#undef MD5_F
#undef MD5_STEP
    put_le32(digest, 0x67452301 + a);
    put_le32(digest + 4, 0xefcdab89 + b);
    put_le32(digest + 8, 0x98badcfe + c);
    put_le32(digest + 12, 0x10325476 + d);
    return 0;
}

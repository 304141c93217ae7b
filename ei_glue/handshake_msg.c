/* handshake_msg.c - building and decoding handshake packets; see
 * handshake_msg.h. No I/O, no global state. */
#include "ei_glue/handshake_msg.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static uint32_t get16(const unsigned char *p)
{
    return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t get32(const unsigned char *p)
{
    return get16(p) << 16 | get16(p + 2);
}

static uint64_t get64(const unsigned char *p)
{
    return (uint64_t)get32(p) << 32 | get32(p + 4);
}

static unsigned char *put16(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
    return p + 2;
}

static unsigned char *put32(unsigned char *p, uint32_t v)
{
    return put16(put16(p, v >> 16), v & 0xffff);
}

static unsigned char *put64(unsigned char *p, uint64_t v)
{
    return put32(put32(p, (uint32_t)(v >> 32)), (uint32_t)v);
}

hs_parse hs_packet(const unsigned char *buf, size_t len, int hdr, const unsigned char **body,
                   size_t *body_len, size_t *total)
{
    if (len < (size_t)hdr)
        return HS_PARSE_MORE;
    size_t n = hdr == 4 ? get32(buf) : get16(buf);
    if (n == 0 || n > HS_MAX_PACKET)
        return HS_PARSE_BAD;
    if (len < (size_t)hdr + n)
        return HS_PARSE_MORE;
    *body = buf + hdr;
    *body_len = n;
    *total = (size_t)hdr + n;
    return HS_PARSE_OK;
}

/* The packet's length header; the body goes after it. */
static unsigned char *put_len(unsigned char *out, int hdr, size_t n)
{
    return hdr == 4 ? put32(out, (uint32_t)n) : put16(out, (uint32_t)n);
}

int hs_valid_node_name(const char *name)
{
    size_t len = strlen(name);
    const char *at = strchr(name, '@');
    if (len == 0 || len > HS_MAX_NAME || !at || at == name || !at[1] || strchr(at + 1, '@'))
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)name[i] < 0x21 || (unsigned char)name[i] > 0x7e)
            return 0;
    return 1;
}

static hs_parse copy_name(const unsigned char *p, size_t n, char *out)
{
    if (n == 0 || n > HS_MAX_NAME)
        return HS_PARSE_BAD;
    memcpy(out, p, n);
    out[n] = '\0';
    return hs_valid_node_name(out) ? HS_PARSE_OK : HS_PARSE_BAD;
}

hs_parse hs_parse_name(const unsigned char *b, size_t n, hs_name *out)
{
    memset(out, 0, sizeof *out);
    if (n >= 15 && b[0] == 'N') {
        size_t nlen = get16(b + 13);
        if (nlen != n - 15)
            return HS_PARSE_BAD;
        out->flags = get64(b + 1);
        out->creation = get32(b + 9);
        return copy_name(b + 15, nlen, out->name);
    }
    if (n >= 8 && b[0] == 'n') { /* Version:16 (5), Flags:32, Name */
        if (get16(b + 1) != 5)
            return HS_PARSE_BAD;
        out->old = 1;
        out->flags = get32(b + 3);
        return copy_name(b + 7, n - 7, out->name);
    }
    return HS_PARSE_BAD;
}

hs_parse hs_parse_status(const unsigned char *b, size_t n, char *text, size_t size)
{
    if (n < 2 || b[0] != 's' || n - 1 >= size)
        return HS_PARSE_BAD;
    for (size_t i = 1; i < n; i++)
        if (b[i] < 0x21 || b[i] > 0x7e)
            return HS_PARSE_BAD;
    memcpy(text, b + 1, n - 1);
    text[n - 1] = '\0';
    return HS_PARSE_OK;
}

hs_parse hs_parse_challenge(const unsigned char *b, size_t n, hs_name *peer, uint32_t *challenge)
{
    memset(peer, 0, sizeof *peer);
    if (n < 19 || b[0] != 'N')
        return HS_PARSE_BAD;
    size_t nlen = get16(b + 17);
    if (nlen != n - 19)
        return HS_PARSE_BAD;
    peer->flags = get64(b + 1);
    *challenge = get32(b + 9);
    peer->creation = get32(b + 13);
    return copy_name(b + 19, nlen, peer->name);
}

hs_parse hs_parse_complement(const unsigned char *b, size_t n, hs_name *peer)
{
    if (n != 9 || b[0] != 'c')
        return HS_PARSE_BAD;
    peer->flags |= (uint64_t)get32(b + 1) << 32;
    peer->creation = get32(b + 5);
    return HS_PARSE_OK;
}

hs_parse hs_parse_reply(const unsigned char *b, size_t n, uint32_t *challenge,
                        unsigned char digest[16])
{
    if (n != 21 || b[0] != 'r')
        return HS_PARSE_BAD;
    *challenge = get32(b + 1);
    memcpy(digest, b + 5, 16);
    return HS_PARSE_OK;
}

hs_parse hs_parse_ack(const unsigned char *b, size_t n, unsigned char digest[16])
{
    if (n != 17 || b[0] != 'a')
        return HS_PARSE_BAD;
    memcpy(digest, b + 1, 16);
    return HS_PARSE_OK;
}

size_t hs_build_name(unsigned char *out, int hdr, uint64_t flags, uint32_t creation,
                     const char *name)
{
    size_t nlen = strlen(name);
    if (nlen > HS_MAX_NAME)
        return 0;
    unsigned char *p = put_len(out, hdr, 15 + nlen);
    *p++ = 'N';
    p = put16(put32(put64(p, flags), creation), (uint32_t)nlen);
    memcpy(p, name, nlen);
    return (size_t)hdr + 15 + nlen;
}

size_t hs_build_status(unsigned char *out, int hdr, const char *status)
{
    size_t n = strlen(status);
    if (n + 1 > HS_MAX_PACKET)
        return 0;
    unsigned char *p = put_len(out, hdr, n + 1);
    *p++ = 's';
    memcpy(p, status, n);
    return (size_t)hdr + 1 + n;
}

size_t hs_build_challenge(unsigned char *out, int hdr, uint64_t flags, uint32_t challenge,
                          uint32_t creation, const char *name)
{
    size_t nlen = strlen(name);
    if (nlen > HS_MAX_NAME)
        return 0;
    unsigned char *p = put_len(out, hdr, 19 + nlen);
    *p++ = 'N';
    p = put16(put32(put32(put64(p, flags), challenge), creation), (uint32_t)nlen);
    memcpy(p, name, nlen);
    return (size_t)hdr + 19 + nlen;
}

size_t hs_build_old_challenge(unsigned char *out, int hdr, uint32_t flags, uint32_t challenge,
                              const char *name)
{
    size_t nlen = strlen(name);
    if (nlen > HS_MAX_NAME)
        return 0;
    unsigned char *p = put_len(out, hdr, 11 + nlen);
    *p++ = 'n';
    p = put32(put32(put16(p, 5), flags), challenge);
    memcpy(p, name, nlen);
    return (size_t)hdr + 11 + nlen;
}

size_t hs_build_reply(unsigned char *out, int hdr, uint32_t challenge,
                      const unsigned char digest[16])
{
    unsigned char *p = put_len(out, hdr, 21);
    *p++ = 'r';
    p = put32(p, challenge);
    memcpy(p, digest, 16);
    return (size_t)hdr + 21;
}

size_t hs_build_ack(unsigned char *out, int hdr, const unsigned char digest[16])
{
    unsigned char *p = put_len(out, hdr, 17);
    *p++ = 'a';
    memcpy(p, digest, 16);
    return (size_t)hdr + 17;
}

int hs_digest(const char *cookie, uint32_t challenge, unsigned char out[16])
{
    char text[16];
    int n = snprintf(text, sizeof text, "%u", challenge);
    unsigned int len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1 &&
             EVP_DigestUpdate(ctx, cookie, strlen(cookie)) == 1 &&
             EVP_DigestUpdate(ctx, text, (size_t)n) == 1 &&
             EVP_DigestFinal_ex(ctx, out, &len) == 1 && len == 16;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : -1;
}

int hs_digest_equal(const unsigned char a[16], const unsigned char b[16])
{
    return CRYPTO_memcmp(a, b, 16) == 0;
}

uint32_t hs_new_challenge(void)
{
    uint32_t c;
    if (getrandom(&c, sizeof c, 0) == (ssize_t)sizeof c)
        return c;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)ts.tv_nsec ^ (uint32_t)getpid() << 16;
}

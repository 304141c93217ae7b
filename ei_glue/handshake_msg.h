/*
 * handshake_msg.h - the messages of the distribution handshake, as pure
 * functions: building each packet and decoding each one from bytes, with
 * nothing read past the bytes given. handshake.c drives them over sockets;
 * the fuzz targets call them directly.
 *
 * Every handshake packet is a length then that many bytes; the length takes
 * 2 bytes over plain TCP and 4 over TLS (as OTP's inet_tls_dist sends it):
 * hdr below.
 *   name       'N' Flags:64 Creation:32 NLen:16 Name   (or old 'n' Version:16 Flags:32 Name)
 *   status     's' Text                                (ok, ok_simultaneous, nok, ...)
 *   challenge  'N' Flags:64 Challenge:32 Creation:32 NLen:16 Name
 *   complement 'c' FlagsHigh:32 Creation:32            (after an old 'n' name)
 *   reply      'r' Challenge:32 Digest:16
 *   ack        'a' Digest:16
 * The digest is MD5(Cookie ++ decimal text of the challenge).
 */
#ifndef PH_HANDSHAKE_MSG_H
#define PH_HANDSHAKE_MSG_H

#include <stddef.h>
#include <stdint.h>

/* What phnode advertises: what ei advertised, plus DFLAG_DIST_MONITOR_NAME
 * (the BEAM then sends MONITOR_P/DEMONITOR_P to us). Hidden: no
 * DFLAG_PUBLISHED. */
#define HS_OUR_FLAGS 0x407074FBCULL
#define HS_DFLAG_HANDSHAKE_23 0x1000000ULL
#define HS_DFLAG_PUBLISHED 0x1ULL
/* What a peer must offer for our encodings to be readable to it:
 * EXTENDED_REFERENCES, EXTENDED_PIDS_PORTS, UTF8_ATOMS, BIG_CREATION. */
#define HS_REQUIRED_FLAGS (0x4ULL | 0x100ULL | 0x10000ULL | 0x40000ULL)

/* The longest handshake packet we accept (a name of 255 bytes plus the
 * fixed fields, with room to spare); longer is not a handshake. */
#define HS_MAX_PACKET 512
#define HS_MAX_NAME 255

typedef struct hs_name {
    uint64_t flags;
    uint32_t creation;
    int old; /* the 'n' form: a 'c' complement may follow our challenge */
    char name[HS_MAX_NAME + 1];
} hs_name;

typedef enum hs_parse {
    HS_PARSE_OK = 0,
    HS_PARSE_MORE = 1, /* the packet is not complete in the bytes given */
    HS_PARSE_BAD = -1, /* not this packet */
} hs_parse;

/* The packet at buf[0..len): its body and length. HS_PARSE_MORE until
 * complete; HS_PARSE_BAD when it claims more than HS_MAX_PACKET or 0. */
hs_parse hs_packet(const unsigned char *buf, size_t len, int hdr, const unsigned char **body,
                   size_t *body_len, size_t *total);

/* Bodies (after the 2-byte length). */
hs_parse hs_parse_name(const unsigned char *b, size_t n, hs_name *out);
hs_parse hs_parse_status(const unsigned char *b, size_t n, char *text, size_t size);
hs_parse hs_parse_challenge(const unsigned char *b, size_t n, hs_name *peer, uint32_t *challenge);
hs_parse hs_parse_complement(const unsigned char *b, size_t n, hs_name *peer);
hs_parse hs_parse_reply(const unsigned char *b, size_t n, uint32_t *challenge,
                        unsigned char digest[16]);
hs_parse hs_parse_ack(const unsigned char *b, size_t n, unsigned char digest[16]);

/* A node name we accept: alive@host, printable ASCII, one '@'. */
int hs_valid_node_name(const char *name);

/* Builders: write a whole packet (its hdr-byte length included) to out
 * (at least HS_MAX_PACKET + 4 bytes); return its length, or 0 if it does
 * not fit. */
size_t hs_build_name(unsigned char *out, int hdr, uint64_t flags, uint32_t creation,
                     const char *name);
size_t hs_build_status(unsigned char *out, int hdr, const char *status);
size_t hs_build_challenge(unsigned char *out, int hdr, uint64_t flags, uint32_t challenge,
                          uint32_t creation, const char *name);
size_t hs_build_old_challenge(unsigned char *out, int hdr, uint32_t flags, uint32_t challenge,
                              const char *name);
size_t hs_build_reply(unsigned char *out, int hdr, uint32_t challenge,
                      const unsigned char digest[16]);
size_t hs_build_ack(unsigned char *out, int hdr, const unsigned char digest[16]);

/* MD5(cookie ++ decimal(challenge)). 0, or -1 if the digest failed. */
int hs_digest(const char *cookie, uint32_t challenge, unsigned char out[16]);
/* Constant-time comparison of two digests: 1 when equal. */
int hs_digest_equal(const unsigned char a[16], const unsigned char b[16]);
/* A random challenge. */
uint32_t hs_new_challenge(void);

#endif

/* md5_short.h - MD5 of inputs that fit one block (up to 55 bytes), as the
 * ring hashes them: child ids and virtual-node names are a few dozen bytes,
 * and OpenSSL's EVP interface spends more on its context than on the
 * block itself for those (181 against about 90 ns a hash on the test VM;
 * 100k ids are hashed on every 100k start). Longer inputs are the caller's
 * (OpenSSL). */
#ifndef PHNODE_MD5_SHORT_H
#define PHNODE_MD5_SHORT_H

#include <stddef.h>
#include <stdint.h>

#define MD5_SHORT_MAX 55

/* The MD5 digest of data[0..len) into digest[16] (RFC 1321). -1 when
 * len > MD5_SHORT_MAX. */
int md5_short(const unsigned char *data, size_t len, unsigned char digest[16]);

#endif

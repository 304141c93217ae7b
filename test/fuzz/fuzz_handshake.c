/* fuzz_handshake - the distribution handshake packets phnode parses itself
 * (handshake_msg.c), as a stream of packets with 2-byte (TCP) and 4-byte
 * (TLS) lengths, each body tried as every packet kind. */
#include "test/fuzz/fuzz_common.h"
#include "ei_glue/handshake_msg.h"

#include <stddef.h>
#include <stdint.h>

static void parse_all(const unsigned char *b, size_t n)
{
    hs_name name;
    char status[64];
    uint32_t challenge;
    unsigned char digest[16];
    (void)hs_parse_name(b, n, &name);
    (void)hs_parse_status(b, n, status, sizeof status);
    (void)hs_parse_challenge(b, n, &name, &challenge);
    (void)hs_parse_complement(b, n, &name);
    (void)hs_parse_reply(b, n, &challenge, digest);
    (void)hs_parse_ack(b, n, digest);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int hdr = 2; hdr <= 4; hdr += 2) {
        size_t off = 0;
        while (off < size) {
            const unsigned char *body;
            size_t n, total;
            if (hs_packet(data + off, size - off, hdr, &body, &n, &total) != HS_PARSE_OK)
                break;
            parse_all(body, n);
            off += total;
        }
    }
    return 0;
}

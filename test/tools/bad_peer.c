/*
 * bad_peer - a misbehaving peer for the integration tests.
 *
 *   bad_peer NODE COOKIE garbage   raw garbage bytes to NODE's port (no handshake)
 *   bad_peer NODE COOKIE badframe  a real handshake, then a frame whose control
 *                                  tuple is garbage
 *   bad_peer NODE COOKIE badmsg    a real handshake, then a REG_SEND to phnode
 *                                  whose message claims 100 list elements and
 *                                  holds one (the frame ends there)
 *   bad_peer NODE COOKIE truncated a real handshake, then a control tuple that
 *                                  claims 4 elements and holds 1
 *
 * Exits 0 when NODE closed the connection within 5 s, 1 when it did not,
 * 2 on a setup error.
 */
#include <arpa/inet.h>
#include <ei.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int epmd_port_please(const char *alive)
{
    const char *env = getenv("ERL_EPMD_PORT");
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)(env ? atoi(env) : 4369))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        return -1;
    unsigned char req[300];
    size_t n = strlen(alive);
    req[0] = (unsigned char)((n + 1) >> 8);
    req[1] = (unsigned char)(n + 1);
    req[2] = 122; /* PORT_PLEASE2_REQ */
    memcpy(req + 3, alive, n);
    if (write(fd, req, n + 3) != (ssize_t)(n + 3))
        return -1;
    unsigned char resp[4];
    if (read(fd, resp, 4) < 4 || resp[0] != 119 || resp[1] != 0)
        return -1;
    close(fd);
    return (resp[2] << 8) | resp[3];
}

/* 0 if the peer closes fd within 5 s (reads drained meanwhile). */
static int wait_closed(int fd)
{
    char buf[4096];
    for (int waited = 0; waited < 5000; waited += 100) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) > 0) {
            ssize_t r = read(fd, buf, sizeof buf);
            if (r == 0 || (r < 0 && errno == ECONNRESET))
                return 0;
        }
    }
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: bad_peer NODE COOKIE garbage|badframe|badmsg|truncated\n");
        return 2;
    }
    const char *node = argv[1], *cookie = argv[2], *mode = argv[3];
    if (strcmp(mode, "garbage") == 0) {
        char alive[256];
        snprintf(alive, sizeof alive, "%.*s", (int)(strchr(node, '@') - node), node);
        int port = epmd_port_please(alive);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (port < 0 || fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
            fprintf(stderr, "bad_peer: cannot reach %s\n", node);
            return 2;
        }
        const char garbage[] = "\x00\x05GARBAGE\xff\xfe\x01 not a handshake";
        if (write(fd, garbage, sizeof garbage) < 0)
            return 0; /* already closed */
        return wait_closed(fd);
    }
    if (strcmp(mode, "badframe") != 0 && strcmp(mode, "badmsg") != 0 &&
        strcmp(mode, "truncated") != 0) {
        fprintf(stderr, "bad_peer: unknown mode %s\n", mode);
        return 2;
    }
    ei_cnode ec;
    char self[64];
    struct in_addr addr = {htonl(INADDR_LOOPBACK)};
    snprintf(self, sizeof self, "bad_peer_%d@127.0.0.1", (int)getpid());
    char alive[32];
    snprintf(alive, sizeof alive, "bad_peer_%d", (int)getpid());
    if (ei_init() != 0 ||
        ei_connect_xinit(&ec, "127.0.0.1", alive, self, &addr, cookie, (unsigned)getpid()) < 0) {
        fprintf(stderr, "bad_peer: ei init failed\n");
        return 2;
    }
    int fd = ei_connect_tmo(&ec, (char *)node, 5000);
    if (fd < 0) {
        fprintf(stderr, "bad_peer: cannot connect to %s\n", node);
        return 2;
    }
    if (strcmp(mode, "truncated") == 0) {
        /* 'p', version, a tuple of 4 holding only the operation 6 */
        const unsigned char frame[] = {0, 0, 0, 6, 'p', 131, 104, 4, 97, 6};
        if (write(fd, frame, sizeof frame) < 0)
            return 0;
        return wait_closed(fd);
    }
    if (strcmp(mode, "badmsg") == 0) {
        /* {6, Self, '', phnode}, then [1 | ...] claiming 100 elements */
        ei_x_buff x;
        if (ei_x_new(&x) != 0)
            return 2;
        const unsigned char pass_through = 'p';
        const unsigned char msg[] = {131, 108, 0, 0, 0, 100, 97, 1};
        if (ei_x_append_buf(&x, "\0\0\0\0", 4) != 0 ||
            ei_x_append_buf(&x, (const char *)&pass_through, 1) != 0 ||
            ei_x_encode_version(&x) != 0 || ei_x_encode_tuple_header(&x, 4) != 0 ||
            ei_x_encode_long(&x, 6) != 0 || ei_x_encode_pid(&x, ei_self(&ec)) != 0 ||
            ei_x_encode_atom(&x, "") != 0 || ei_x_encode_atom(&x, "phnode") != 0 ||
            ei_x_append_buf(&x, (const char *)msg, sizeof msg) != 0)
            return 2;
        uint32_t body = (uint32_t)x.index - 4;
        x.buff[0] = (char)(body >> 24);
        x.buff[1] = (char)(body >> 16);
        x.buff[2] = (char)(body >> 8);
        x.buff[3] = (char)body;
        if (write(fd, x.buff, (size_t)x.index) < 0)
            return 0;
        ei_x_free(&x);
        return wait_closed(fd);
    }
    /* 'p', version, then the small tuple {bogus} instead of {Op, ...}. */
    const unsigned char frame[] = {0,   0, 0,   12,  'p', 131, 104, 1,
                                   119, 5, 'b', 'o', 'g', 'u', 's', 0};
    if (write(fd, frame, 4 + 12) < 0)
        return 0;
    return wait_closed(fd);
}

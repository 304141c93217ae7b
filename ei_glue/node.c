/* node.c - see node.h. */
#include "ei_glue/node.h"

#include "ei_glue/socket_callbacks.h"
#include "hub/runtime/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static uint32_t fresh_creation(void)
{
    uint32_t c = 0;
    if (getrandom(&c, sizeof c, GRND_NONBLOCK) != (ssize_t)sizeof c)
        c = (uint32_t)time(NULL) ^ ((uint32_t)getpid() << 16);
    /* ei adds 0xE10000 to values below 4; stay clear of them. */
    return c < 4 ? c + 4 : c;
}

int node_default_cookie(char *out, size_t size, char *err, size_t err_size)
{
    const char *home = getenv("HOME");
    char path[4096];
    snprintf(path, sizeof path, "%s/.erlang.cookie", home ? home : "");
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, err_size, "no --cookie given and cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    size_t n = fread(out, 1, size - 1, f);
    fclose(f);
    out[n] = '\0';
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' '))
        out[--n] = '\0';
    if (n == 0) {
        snprintf(err, err_size, "no --cookie given and %s is empty", path);
        return -1;
    }
    return 0;
}

static int resolve_host(const char *host, struct in_addr *addr)
{
    if (inet_pton(AF_INET, host, addr) == 1)
        return 0;
    struct addrinfo hints = {.ai_family = AF_INET}, *res;
    if (getaddrinfo(host, NULL, &hints, &res) != 0)
        return -1;
    *addr = ((struct sockaddr_in *)res->ai_addr)->sin_addr;
    freeaddrinfo(res);
    return 0;
}

int node_init(node_identity *node, const char *name, const char *cookie, char *err, size_t err_size)
{
    memset(node, 0, sizeof *node);
    node->listen_fd = node->epmd_fd = -1;
    const char *at = strchr(name, '@');
    if (!at || at == name || !at[1] || strchr(at + 1, '@') || strlen(name) > MAXNODELEN) {
        snprintf(err, err_size, "--name must look like alive@host, got '%s'", name);
        return -1;
    }
    char alive[EI_MAXALIVELEN + 1], host[EI_MAXHOSTNAMELEN + 1];
    size_t alive_len = (size_t)(at - name);
    if (alive_len > EI_MAXALIVELEN || strlen(at + 1) > EI_MAXHOSTNAMELEN) {
        snprintf(err, err_size, "node name '%s' is too long", name);
        return -1;
    }
    memcpy(alive, name, alive_len);
    alive[alive_len] = '\0';
    snprintf(host, sizeof host, "%s", at + 1);
    struct in_addr addr;
    if (resolve_host(host, &addr) != 0) {
        snprintf(err, err_size, "cannot resolve the host part of '%s'", name);
        return -1;
    }
    char cookie_buf[EI_MAX_COOKIE_SIZE + 1];
    if (!cookie) {
        if (node_default_cookie(cookie_buf, sizeof cookie_buf, err, err_size) != 0)
            return -1;
        cookie = cookie_buf;
    }
    if (strlen(cookie) > EI_MAX_COOKIE_SIZE) {
        snprintf(err, err_size, "cookie longer than %d bytes", EI_MAX_COOKIE_SIZE);
        return -1;
    }
    snprintf(node->name, sizeof node->name, "%s", name);
    node->creation = fresh_creation();
    if (ei_connect_xinit_ussi(&node->ec, host, alive, name, &addr, cookie, node->creation,
                              &tcp_socket_callbacks, sizeof tcp_socket_callbacks, NULL) < 0) {
        snprintf(err, err_size, "ei_connect_xinit failed for '%s'", name);
        return -1;
    }
    return 0;
}

static void epmd_port(char *out, size_t size)
{
    const char *env = getenv("ERL_EPMD_PORT");
    snprintf(out, size, "%s", env && *env ? env : "4369");
}

static int epmd_running(void)
{
    char port[16];
    epmd_port(port, sizeof port);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

/* Starts `epmd -daemon` as erl does when no epmd answers. */
static int start_epmd(void)
{
    char *argv[] = {"epmd", "-daemon", NULL};
    pid_t pid;
    int rc = posix_spawnp(&pid, "epmd", NULL, NULL, argv, environ);
    if (rc != 0) {
        LOG_E("node", "cannot start epmd: %s", strerror(rc));
        return -1;
    }
    int status;
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        LOG_E("node", "epmd -daemon failed");
        return -1;
    }
    for (int i = 0; i < 100 && !epmd_running(); i++)
        usleep(20000);
    LOG_I("node", "started epmd");
    return epmd_running() ? 0 : -1;
}

int node_listen_and_publish(node_identity *node, int port, char *err, size_t err_size)
{
    const char *host = strchr(node->name, '@') + 1;
    struct in_addr addr;
    if (resolve_host(host, &addr) != 0)
        addr.s_addr = htonl(INADDR_ANY);
    node->listen_port = port;
    node->listen_fd = ei_xlisten(&node->ec, &addr, &node->listen_port, 128);
    if (node->listen_fd < 0) {
        snprintf(err, err_size, "cannot listen on %s:%d: %s", host, port, strerror(erl_errno));
        return -1;
    }
    if (!epmd_running() && start_epmd() != 0) {
        snprintf(err, err_size, "no epmd is running and it could not be started");
        return -1;
    }
    node->epmd_fd = ei_publish_tmo(&node->ec, node->listen_port, 5000);
    if (node->epmd_fd < 0) {
        snprintf(err, err_size,
                 "epmd refused the name %s (is a node with that name already running?)",
                 node->name);
        return -1;
    }
    return 0;
}

void node_close(node_identity *node)
{
    if (node->epmd_fd >= 0)
        close(node->epmd_fd);
    if (node->listen_fd >= 0)
        ei_close_connection(node->listen_fd);
    node->epmd_fd = node->listen_fd = -1;
}

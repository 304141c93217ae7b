/* node.h - this node's identity on the distribution: its name, cookie and
 * creation, the listen socket, and its registration with epmd. */
#ifndef PH_NODE_H
#define PH_NODE_H

#include <ei.h>
#include <stdint.h>

typedef struct node_identity {
    ei_cnode ec;
    char name[MAXNODELEN + 1];
    uint32_t creation;
    int listen_fd;
    int listen_port;
    int epmd_fd; /* keeping it open keeps the name registered */
} node_identity;

/* Validates "alive@host", picks a fresh creation and sets up ei with our
 * socket callbacks. cookie NULL: $HOME/.erlang.cookie. On error returns -1
 * with a message in err. */
int node_init(node_identity *node, const char *name, const char *cookie, char *err,
              size_t err_size);
/* Listens (port 0: any free port) and registers with epmd, starting epmd
 * if none is running. */
int node_listen_and_publish(node_identity *node, int port, char *err, size_t err_size);
void node_close(node_identity *node);
/* Reads the cookie from $HOME/.erlang.cookie like erl does. */
int node_default_cookie(char *out, size_t size, char *err, size_t err_size);

#endif

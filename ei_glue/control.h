/* control.h - decoding one incoming distribution message (control tuple
 * plus optional payload) into a runtime signal. */
#ifndef PH_CONTROL_H
#define PH_CONTROL_H

#include <processhub/worker.h>
#include <stddef.h>
#include <stdint.h>

/* Distribution operation codes (erl_dist_protocol). */
enum dop {
    DOP_LINK = 1,
    DOP_SEND = 2,
    DOP_EXIT = 3,
    DOP_UNLINK = 4,
    DOP_NODE_LINK = 5,
    DOP_REG_SEND = 6,
    DOP_GROUP_LEADER = 7,
    DOP_EXIT2 = 8,
    DOP_SEND_TT = 12,
    DOP_EXIT_TT = 13,
    DOP_REG_SEND_TT = 16,
    DOP_EXIT2_TT = 18,
    DOP_MONITOR_P = 19,
    DOP_DEMONITOR_P = 20,
    DOP_MONITOR_P_EXIT = 21,
    DOP_SEND_SENDER = 22,
    DOP_SEND_SENDER_TT = 23,
    DOP_PAYLOAD_EXIT = 24,
    DOP_PAYLOAD_EXIT_TT = 25,
    DOP_PAYLOAD_EXIT2 = 26,
    DOP_PAYLOAD_EXIT2_TT = 27,
    DOP_PAYLOAD_MONITOR_P_EXIT = 28,
    DOP_ALIAS_SEND = 33,
    DOP_ALIAS_SEND_TT = 34,
    DOP_UNLINK_ID = 35,
    DOP_UNLINK_ID_ACK = 36,
};

/* One decoded operation: what control_decode read, what control_apply
 * acts on. */
typedef struct control_op {
    long op;
    ph_pid from, to;
    uint32_t name; /* REG_SEND's name; a monitor by name; else ATOM_NONE */
    ph_ref ref;
    uint64_t id; /* UNLINK_ID */
    /* the message (versioned, inside the frame) or the exit reason */
    const char *payload;
    uint32_t payload_len;
    char *reason_copy; /* a reason from the control tuple, made versioned */
    char small[256];
} control_op;

/* body: the bytes after 'p' (versioned control tuple, then an optional
 * versioned message). The pure step: 0 and *op decoded (free it with
 * control_op_free), 1 for a well-formed operation this node does not
 * handle, -1 when the bytes are malformed. Nothing is delivered. */
int control_decode(uint32_t peer, const char *body, size_t len, control_op *op);
/* Delivers a decoded operation (route_*). */
void control_apply(uint32_t peer, const control_op *op);
void control_op_free(control_op *op);

/* Decode, then apply. Returns 0 when handled or deliberately ignored
 * (unknown operations are logged), -1 when the bytes are malformed: the
 * caller then drops the connection. */
int control_dispatch(uint32_t peer, const char *body, size_t len);
/* The same for a frame read into a block of its own (signal_block_alloc),
 * body inside it: a message becomes a signal made from the block, without
 * a copy. Takes the block in every case (freed unless a signal took it). */
int control_dispatch_block(uint32_t peer, char *block, const char *body, size_t len);

#endif

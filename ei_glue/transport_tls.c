/*
 * transport_tls.c - TLS distribution (OpenSSL): the whole connection, the
 * distribution handshake included, runs inside one TLS session, as OTP's
 * inet_tls_dist does; epmd is unchanged.
 *
 * One session per socket, found by its fd. An SSL object must not be used
 * by two threads at once: one poller at a time reads a connection (its
 * read_req, io_loop.c) while any thread may write, so each session has its
 * own lock around every OpenSSL call on it.
 */
#include "ei_glue/transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct session {
    SSL *ssl;
    pthread_mutex_t lock;
    char why[128]; /* the TLS reason of the last failed read or write */
} session;

static SSL_CTX *server_ctx, *client_ctx;
static tls_options options;
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static session **by_fd;
static int table_size;

/* One TLS record: writes are gathered up to this before SSL_write. */
#define RECORD_MAX 16384

static session *session_of(int fd)
{
    session *s = NULL;
    pthread_mutex_lock(&table_lock);
    if (fd >= 0 && fd < table_size)
        s = by_fd[fd];
    pthread_mutex_unlock(&table_lock);
    return s;
}

static int session_put(int fd, session *s)
{
    int rc = 0;
    pthread_mutex_lock(&table_lock);
    if (fd >= table_size) {
        int size = table_size ? table_size : 256;
        while (size <= fd)
            size *= 2;
        session **n = realloc(by_fd, (size_t)size * sizeof *n);
        if (!n) {
            rc = -1;
        } else {
            memset(n + table_size, 0, (size_t)(size - table_size) * sizeof *n);
            by_fd = n;
            table_size = size;
        }
    }
    if (rc == 0)
        by_fd[fd] = s;
    pthread_mutex_unlock(&table_lock);
    return rc;
}

/* The reason of the last failure on this thread, for the log. */
static void last_error(SSL *ssl, char *why, size_t size)
{
    long verify = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    unsigned long e = ERR_peek_last_error();
    if (verify != X509_V_OK) {
        snprintf(why, size, "certificate verify failed: %s", X509_verify_cert_error_string(verify));
    } else if (e) {
        char text[256];
        ERR_error_string_n(e, text, sizeof text);
        /* "error:0A000086:SSL routines::certificate verify failed": the
         * last field is the readable part */
        const char *tail = strrchr(text, ':');
        snprintf(why, size, "%s", tail && tail[1] ? tail + 1 : text);
    } else {
        snprintf(why, size, "%s", errno ? strerror(errno) : "the peer closed the connection");
    }
    ERR_clear_error();
}

static int is_ip(const char *host)
{
    struct in_addr a;
    return inet_pton(AF_INET, host, &a) == 1;
}

static int tls_attach(int fd, int incoming, const char *server_name, char *why, size_t why_size)
{
    session *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(why, why_size, "out of memory");
        return -1;
    }
    ERR_clear_error();
    s->ssl = SSL_new(incoming ? server_ctx : client_ctx);
    if (!s->ssl || SSL_set_fd(s->ssl, fd) != 1) {
        last_error(NULL, why, why_size);
        SSL_free(s->ssl);
        free(s);
        return -1;
    }
    if (incoming) {
        SSL_set_accept_state(s->ssl);
    } else {
        SSL_set_connect_state(s->ssl);
        if (server_name && !is_ip(server_name))
            SSL_set_tlsext_host_name(s->ssl, server_name); /* SNI, as the BEAM sends it */
        if (server_name && options.verify_server_name) {
            X509_VERIFY_PARAM *param = SSL_get0_param(s->ssl);
            int ok = is_ip(server_name) ? X509_VERIFY_PARAM_set1_ip_asc(param, server_name)
                                        : SSL_set1_host(s->ssl, server_name);
            if (ok != 1) {
                last_error(NULL, why, why_size);
                SSL_free(s->ssl);
                free(s);
                return -1;
            }
        }
    }
    pthread_mutex_init(&s->lock, NULL);
    if (session_put(fd, s) != 0) {
        snprintf(why, why_size, "out of memory");
        pthread_mutex_destroy(&s->lock);
        SSL_free(s->ssl);
        free(s);
        return -1;
    }
    return 0;
}

static int tls_secure(int fd, int *want_write, char *why, size_t why_size)
{
    session *s = session_of(fd);
    *want_write = 0;
    if (!s) {
        snprintf(why, why_size, "no TLS session");
        return -1;
    }
    pthread_mutex_lock(&s->lock);
    ERR_clear_error();
    errno = 0;
    int rc = SSL_do_handshake(s->ssl), result = 1;
    if (rc != 1) {
        int e = SSL_get_error(s->ssl, rc);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            *want_write = e == SSL_ERROR_WANT_WRITE;
            result = 0;
        } else {
            last_error(s->ssl, why, why_size);
            result = -1;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return result;
}

static ssize_t tls_read(int fd, char *buf, size_t len)
{
    session *s = session_of(fd);
    if (!s) {
        errno = EBADF;
        return -1;
    }
    pthread_mutex_lock(&s->lock);
    ERR_clear_error();
    errno = 0;
    int n = SSL_read(s->ssl, buf, len > 0x7fffffff ? 0x7fffffff : (int)len);
    ssize_t result = n;
    if (n <= 0) {
        int e = SSL_get_error(s->ssl, n);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            errno = EAGAIN;
            result = -1;
        } else if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0)) {
            result = 0; /* end of stream */
        } else {
            if (e == SSL_ERROR_SSL)
                last_error(s->ssl, s->why, sizeof s->why);
            if (e != SSL_ERROR_SYSCALL)
                errno = EIO;
            result = -1;
        }
        ERR_clear_error();
    }
    pthread_mutex_unlock(&s->lock);
    return result;
}

/* Gathers the iovs into one record (so that many small frames cost one
 * record, not one each). A write that must be retried is retried with the
 * same bytes first: the writers keep them at the head of their queue. */
static ssize_t tls_writev(int fd, const struct iovec *iov, int iovcnt)
{
    static _Thread_local char record[RECORD_MAX];
    session *s = session_of(fd);
    if (!s) {
        errno = EBADF;
        return -1;
    }
    size_t len = 0;
    const char *data = record;
    if (iovcnt == 1 || (iovcnt > 0 && iov[0].iov_len >= RECORD_MAX)) {
        data = iov[0].iov_base;
        len = iov[0].iov_len > 0x7fffffff ? 0x7fffffff : iov[0].iov_len;
    } else {
        for (int i = 0; i < iovcnt && len < RECORD_MAX; i++) {
            size_t take = iov[i].iov_len < RECORD_MAX - len ? iov[i].iov_len : RECORD_MAX - len;
            memcpy(record + len, iov[i].iov_base, take);
            len += take;
        }
    }
    if (len == 0)
        return 0;
    pthread_mutex_lock(&s->lock);
    ERR_clear_error();
    errno = 0;
    int n = SSL_write(s->ssl, data, (int)len);
    ssize_t result = n;
    if (n <= 0) {
        int e = SSL_get_error(s->ssl, n);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            errno = EAGAIN;
        else if (e != SSL_ERROR_SYSCALL || errno == 0)
            errno = EPIPE;
        if (e == SSL_ERROR_SSL)
            last_error(s->ssl, s->why, sizeof s->why);
        result = -1;
        ERR_clear_error();
    }
    pthread_mutex_unlock(&s->lock);
    return result;
}

static size_t tls_pending(int fd)
{
    session *s = session_of(fd);
    if (!s)
        return 0;
    pthread_mutex_lock(&s->lock);
    int n = SSL_pending(s->ssl);
    pthread_mutex_unlock(&s->lock);
    return n > 0 ? (size_t)n : 0;
}

static void tls_shutdown(int fd)
{
    /* the socket, not the session: SSL_shutdown would race the reader */
    shutdown(fd, SHUT_RDWR);
}

static void tls_close(int fd)
{
    session *s = session_of(fd);
    if (s) {
        session_put(fd, NULL);
        SSL_free(s->ssl);
        pthread_mutex_destroy(&s->lock);
        free(s);
    }
    close(fd);
}

static int tls_failure(int fd, char *why, size_t why_size)
{
    session *s = session_of(fd);
    if (!s)
        return 0;
    pthread_mutex_lock(&s->lock);
    int known = s->why[0] != '\0';
    if (known)
        snprintf(why, why_size, "%s", s->why);
    pthread_mutex_unlock(&s->lock);
    return known;
}

const transport_ops tls_transport = {
    .name = "tls",
    .handshake_header = 4,
    .short_read_drains = 0,
    .attach = tls_attach,
    .secure = tls_secure,
    .read = tls_read,
    .writev = tls_writev,
    .pending = tls_pending,
    .shutdown = tls_shutdown,
    .close = tls_close,
    .failure = tls_failure,
};

static SSL_CTX *make_ctx(int server, char *err, size_t err_size)
{
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    char why[200];
    const char *step = "SSL_CTX_new";
    if (!ctx)
        goto fail;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* a peer that closes without close_notify (the BEAM does) is an end of
     * stream, not an error */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
    step = options.certfile;
    if (SSL_CTX_use_certificate_chain_file(ctx, options.certfile) != 1)
        goto fail;
    step = options.keyfile ? options.keyfile : options.certfile;
    if (SSL_CTX_use_PrivateKey_file(ctx, step, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1)
        goto fail;
    if (options.cacertfile) {
        step = options.cacertfile;
        if (SSL_CTX_load_verify_locations(ctx, options.cacertfile, NULL) != 1)
            goto fail;
    }
    int mode = SSL_VERIFY_NONE;
    if (options.verify_peer) {
        mode = SSL_VERIFY_PEER;
        if (server && options.fail_if_no_peer_cert)
            mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    }
    SSL_CTX_set_verify(ctx, mode, NULL);
    return ctx;
fail:
    last_error(NULL, why, sizeof why);
    snprintf(err, err_size, "tls: %s: %s", step, why);
    SSL_CTX_free(ctx);
    return NULL;
}

int transport_tls_init(const tls_options *o, char *err, size_t err_size)
{
    options = *o;
    if (!o->certfile) {
        snprintf(err, err_size, "tls: certfile is required");
        return -1;
    }
    if (o->verify_peer && !o->cacertfile) {
        snprintf(err, err_size, "tls: verify_peer needs cacertfile (or set verify to verify_none)");
        return -1;
    }
    if (!(server_ctx = make_ctx(1, err, err_size)) || !(client_ctx = make_ctx(0, err, err_size))) {
        transport_tls_shutdown();
        return -1;
    }
    return 0;
}

void transport_tls_shutdown(void)
{
    SSL_CTX_free(server_ctx);
    SSL_CTX_free(client_ctx);
    server_ctx = client_ctx = NULL;
    pthread_mutex_lock(&table_lock);
    free(by_fd);
    by_fd = NULL;
    table_size = 0;
    pthread_mutex_unlock(&table_lock);
}

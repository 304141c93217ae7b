/* log.c - formats a whole line first (text or a JSON object), then writes
 * it with one write(2) so lines from different threads never interleave. */
#include "hub/runtime/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 4096

static _Atomic int current_level = LOG_INFO;
static _Atomic int current_format = LOG_FORMAT_TEXT;
static char node_name[256]; /* set once at start-up, before other threads log */
static const char *const level_names[] = {"error", "warning", "info", "debug"};

void log_set_level(log_level level)
{
    atomic_store(&current_level, (int)level);
}

void log_set_format(log_format format)
{
    atomic_store(&current_format, (int)format);
}

void log_set_node(const char *node)
{
    snprintf(node_name, sizeof node_name, "%s", node ? node : "");
}

int log_level_parse(const char *name, log_level *level)
{
    for (int i = 0; i <= LOG_DEBUG; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *level = (log_level)i;
            return 0;
        }
    }
    return -1;
}

int log_format_parse(const char *name, log_format *format)
{
    if (strcmp(name, "text") == 0)
        *format = LOG_FORMAT_TEXT;
    else if (strcmp(name, "json") == 0)
        *format = LOG_FORMAT_JSON;
    else
        return -1;
    return 0;
}

int log_enabled(log_level level)
{
    return (int)level <= atomic_load_explicit(&current_level, memory_order_relaxed);
}

typedef struct line {
    char buf[LINE_MAX_BYTES];
    size_t len;
} line;

static void put(line *l, const char *s, size_t n)
{
    size_t room = sizeof l->buf - 2 - l->len; /* keep room for "}\n" */
    if (n > room)
        n = room;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void puts_(line *l, const char *s)
{
    put(l, s, strlen(s));
}

/* A JSON string, quotes included. */
static void put_json(line *l, const char *s)
{
    put(l, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            put(l, esc, 2);
        } else if (*p < 0x20 || *p == 0x7f) {
            snprintf(esc, sizeof esc, "\\u%04x", *p);
            put(l, esc, 6);
        } else {
            put(l, (const char *)p, 1);
        }
    }
    put(l, "\"", 1);
}

static void vwrite(log_level level, const char *component, const log_field *fields, int n_fields,
                   const char *fmt, va_list ap)
{
    char message[LINE_MAX_BYTES / 2];
    int m = vsnprintf(message, sizeof message, fmt, ap);
    if (m < 0)
        message[0] = 0;
    /* Keep one event on one line even if a term or peer name had a newline. */
    for (char *p = message; *p; p++)
        if (*p == '\n')
            *p = ' ';
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    char stamp[96];
    snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000L);
    line l;
    l.len = 0;
    if (atomic_load_explicit(&current_format, memory_order_relaxed) == LOG_FORMAT_JSON) {
        puts_(&l, "{\"time\":");
        put_json(&l, stamp);
        puts_(&l, ",\"level\":");
        put_json(&l, level_names[level]);
        puts_(&l, ",\"component\":");
        put_json(&l, component);
        if (node_name[0]) {
            puts_(&l, ",\"node\":");
            put_json(&l, node_name);
        }
        puts_(&l, ",\"message\":");
        put_json(&l, message);
        for (int i = 0; i < n_fields; i++) {
            if (!fields[i].value || !fields[i].value[0])
                continue;
            puts_(&l, ",");
            put_json(&l, fields[i].key);
            puts_(&l, ":");
            put_json(&l, fields[i].value);
        }
        l.buf[l.len++] = '}';
    } else {
        puts_(&l, stamp);
        puts_(&l, " [");
        puts_(&l, level_names[level]);
        puts_(&l, "] ");
        puts_(&l, component);
        puts_(&l, ": ");
        puts_(&l, message);
        for (int i = 0; i < n_fields; i++) {
            if (!fields[i].value || !fields[i].value[0])
                continue;
            puts_(&l, " ");
            puts_(&l, fields[i].key);
            puts_(&l, "=");
            puts_(&l, fields[i].value);
        }
    }
    for (size_t i = 0; i < l.len; i++)
        if (l.buf[i] == '\n')
            l.buf[i] = ' ';
    l.buf[l.len++] = '\n';
    ssize_t w = write(STDERR_FILENO, l.buf, l.len);
    (void)w; /* nowhere left to report a failed log write */
}

void log_write(log_level level, const char *component, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    va_list ap;
    va_start(ap, fmt);
    vwrite(level, component, NULL, 0, fmt, ap);
    va_end(ap);
}

void log_write_fields(log_level level, const char *component, const log_field *fields, int n_fields,
                      const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    va_list ap;
    va_start(ap, fmt);
    vwrite(level, component, fields, n_fields, fmt, ap);
    va_end(ap);
}

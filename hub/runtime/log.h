/* log.h - one line per event, with a level, to stderr, as text or as JSON
 * lines (--log-format). Thread-safe. */
#ifndef PH_LOG_H
#define PH_LOG_H

typedef enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG } log_level;
typedef enum log_format { LOG_FORMAT_TEXT = 0, LOG_FORMAT_JSON } log_format;

/* A structured field: text lines show it as key=value after the message,
 * JSON lines as a member. NULL or empty values are left out. Keys in use:
 * peer (a node name), peer_addr (ip:port), child_id, reason. */
typedef struct log_field {
    const char *key;
    const char *value;
} log_field;

void log_set_level(log_level level);
int log_level_parse(const char *name, log_level *level);
int log_format_parse(const char *name, log_format *format);
void log_set_format(log_format format);
/* This node's name, added to every JSON line as "node" (copied). */
void log_set_node(const char *node);
int log_enabled(log_level level);
void log_write(log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_write_fields(log_level level, const char *component, const log_field *fields, int n_fields,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#define LOG_E(comp, ...) log_write(LOG_ERROR, comp, __VA_ARGS__)
#define LOG_W(comp, ...) log_write(LOG_WARN, comp, __VA_ARGS__)
#define LOG_I(comp, ...) log_write(LOG_INFO, comp, __VA_ARGS__)
#define LOG_D(comp, ...)                                                                           \
    do {                                                                                           \
        if (log_enabled(LOG_DEBUG))                                                                \
            log_write(LOG_DEBUG, comp, __VA_ARGS__);                                               \
    } while (0)

#endif

/* modules.c - registry of worker modules: compiled in, or loaded from
 * shared objects that export PH_WORKER_LIB_SYMBOL. */
#include "hub/runtime/modules.h"

#include "hub/runtime/log.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MODULES 256

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static const ph_worker_module *modules[MAX_MODULES];
static int n_modules;
static void *libraries[MAX_MODULES];
static int n_libraries;

int ph_register_module(const ph_worker_module *m)
{
    if (!m || !m->name || !*m->name) {
        LOG_E("modules", "refusing a worker module without a name");
        return -1;
    }
    int rc = 0;
    pthread_mutex_lock(&lock);
    for (int i = 0; i < n_modules; i++) {
        if (strcmp(modules[i]->name, m->name) == 0) {
            LOG_E("modules", "worker module %s is already registered", m->name);
            rc = -1;
            goto out;
        }
    }
    if (n_modules == MAX_MODULES) {
        LOG_E("modules", "too many worker modules (%d)", MAX_MODULES);
        rc = -1;
        goto out;
    }
    modules[n_modules++] = m;
out:
    pthread_mutex_unlock(&lock);
    return rc;
}

const ph_worker_module *ph_find_module(const char *name)
{
    const ph_worker_module *found = NULL;
    pthread_mutex_lock(&lock);
    for (int i = 0; i < n_modules && !found; i++)
        if (strcmp(modules[i]->name, name) == 0)
            found = modules[i];
    pthread_mutex_unlock(&lock);
    return found;
}

void modules_for_each(void (*fn)(const ph_worker_module *m, void *arg), void *arg)
{
    pthread_mutex_lock(&lock);
    int n = n_modules;
    const ph_worker_module *copy[MAX_MODULES];
    memcpy(copy, modules, (size_t)n * sizeof copy[0]);
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < n; i++)
        if (!copy[i]->system)
            fn(copy[i], arg);
}

int modules_load_library(const char *path)
{
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        LOG_E("modules", "cannot load worker library %s: %s", path, dlerror());
        return -1;
    }
    const ph_worker_module *const *list = dlsym(handle, PH_WORKER_LIB_SYMBOL);
    if (!list) {
        LOG_E("modules", "worker library %s does not export %s", path, PH_WORKER_LIB_SYMBOL);
        dlclose(handle);
        return -1;
    }
    int count = 0;
    for (; list[count]; count++) {
        if (ph_register_module(list[count]) != 0) {
            /* Modules registered before the failure stay; the handle must too. */
            break;
        }
    }
    pthread_mutex_lock(&lock);
    if (n_libraries < MAX_MODULES)
        libraries[n_libraries++] = handle;
    pthread_mutex_unlock(&lock);
    if (list[count]) {
        LOG_E("modules", "worker library %s: module %d could not be registered", path, count);
        return -1;
    }
    LOG_I("modules", "loaded %d worker module(s) from %s", count, path);
    return 0;
}

void modules_shutdown(void)
{
    pthread_mutex_lock(&lock);
    n_modules = 0;
    /* Libraries stay mapped: a module's code may still be on a stack during
     * exit handlers; the OS unmaps them at process exit. */
    n_libraries = 0;
    pthread_mutex_unlock(&lock);
}

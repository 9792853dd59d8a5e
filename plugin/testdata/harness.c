/*
 * A stand-in for Fluent Bit's Go proxy (src/proxy/go/go.c), for tests: it
 * dlopen()s an output plugin .so and drives it the way Fluent Bit does,
 * through the same structures fluent-bit-go's headers declare. Commands
 * come on stdin, one per line; each gets one reply line on fd 3.
 *
 *   register                        FLBPluginRegister
 *   prop N KEY VALUE                set a property of instance N
 *   init N                          FLBPluginInit
 *   flush N TAG FILE                FLBPluginFlushCtx with FILE's bytes
 *   flushdir N TAG DIR THREADS      every file of DIR, in name order, from THREADS threads
 *   par / end                       run the commands between them concurrently
 *   exit N                          FLBPluginExitCtx
 *   exitall                         FLBPluginExit
 *   rss                             VmRSS, VmHWM, RssAnon and RssFile in kB
 *   quit
 */
#include <dirent.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>

struct flb_plugin_proxy_def { int type; int proxy; int flags; char *name; char *description; };
struct flb_api { char *(*output_get_property)(char *, void *); char *_; };
struct flb_plugin_proxy_context { void *remote_context; };
struct flbgo_output_plugin {
    void *_;
    struct flb_api *api;
    void *o_ins;
    struct flb_plugin_proxy_context *context;
};

#define MAXI 16
#define MAXP 32
struct instance {
    char *keys[MAXP], *vals[MAXP];
    int np;
    struct flb_api api;
    struct flb_plugin_proxy_context ctx;
    struct flbgo_output_plugin plugin;
};
static struct instance inst[MAXI];

static int (*p_register)(struct flb_plugin_proxy_def *);
static int (*p_init)(void *);
static int (*p_flush)(void *, void *, int, char *);
static int (*p_exitctx)(void *);
static int (*p_exit)(void);
static FILE *reply;
static pthread_mutex_t reply_mu = PTHREAD_MUTEX_INITIALIZER;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#include <stdarg.h>
static void say(const char *fmt, ...) {
    va_list ap;
    pthread_mutex_lock(&reply_mu);
    va_start(ap, fmt);
    vfprintf(reply, fmt, ap);
    va_end(ap);
    fputc('\n', reply);
    fflush(reply);
    pthread_mutex_unlock(&reply_mu);
}

/* Fluent Bit's flb_output_get_property: case-insensitive, NULL if unset. */
static char *get_property(char *key, void *o_ins) {
    struct instance *in = o_ins;
    for (int i = 0; i < in->np; i++)
        if (strcasecmp(in->keys[i], key) == 0) return in->vals[i];
    return NULL;
}

static char *read_file(const char *path, long *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc(*len > 0 ? *len : 1);
    if (fread(buf, 1, *len, f) != (size_t)*len) { free(buf); buf = NULL; }
    fclose(f);
    return buf;
}

static int flush_file(int n, char *tag, const char *path) {
    long len;
    char *buf = read_file(path, &len);
    if (!buf) return -1;
    int rc = p_flush(inst[n].ctx.remote_context, buf, (int)len, tag);
    free(buf);
    return rc;
}

struct job {
    int n, threads;
    char tag[256], dir[4096];
    struct dirent **names;
    int count, next, ok, retry, error;
    pthread_mutex_t mu;
};

static void *flush_worker(void *arg) {
    struct job *j = arg;
    for (;;) {
        pthread_mutex_lock(&j->mu);
        int i = j->next++;
        pthread_mutex_unlock(&j->mu);
        if (i >= j->count) return NULL;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", j->dir, j->names[i]->d_name);
        int rc = flush_file(j->n, j->tag, path);
        pthread_mutex_lock(&j->mu);
        if (rc == 1) j->ok++; else if (rc == 2) j->retry++; else j->error++;
        pthread_mutex_unlock(&j->mu);
    }
}

static long long tv_ns(struct timeval tv) { return tv.tv_sec * 1000000000LL + tv.tv_usec * 1000LL; }

static int not_dot(const struct dirent *d) { return d->d_name[0] != '.'; }

static void flushdir(int n, char *tag, char *dir, int threads) {
    struct job j;
    memset(&j, 0, sizeof j);
    j.n = n;
    snprintf(j.tag, sizeof j.tag, "%s", tag);
    snprintf(j.dir, sizeof j.dir, "%s", dir);
    pthread_mutex_init(&j.mu, NULL);
    j.count = scandir(dir, &j.names, not_dot, alphasort);
    if (j.count < 0) { say("flushdir %d error=cannot-read-dir", n); return; }
    struct timespec t0, t1;
    struct rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_t th[64];
    if (threads < 1) threads = 1;
    if (threads > 64) threads = 64;
    for (int i = 0; i < threads; i++) pthread_create(&th[i], NULL, flush_worker, &j);
    for (int i = 0; i < threads; i++) pthread_join(th[i], NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    getrusage(RUSAGE_SELF, &r1);
    long long ns = (t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
    /* CPU of the whole process, Go's collector and ONNX Runtime's threads included */
    long long cpu = (tv_ns(r1.ru_utime) + tv_ns(r1.ru_stime)) - (tv_ns(r0.ru_utime) + tv_ns(r0.ru_stime));
    say("flushdir %d ok=%d retry=%d error=%d ns=%lld cpu_ns=%lld", n, j.ok, j.retry, j.error, ns, cpu);
    for (int i = 0; i < j.count; i++) free(j.names[i]);
    free(j.names);
}

static void rss(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long vmrss = -1, vmhwm = -1, anon = -1, file = -1;
    while (f && fgets(line, sizeof line, f)) {
        sscanf(line, "VmRSS: %ld", &vmrss);
        sscanf(line, "VmHWM: %ld", &vmhwm);
        sscanf(line, "RssAnon: %ld", &anon);
        sscanf(line, "RssFile: %ld", &file);
    }
    if (f) fclose(f);
    say("rss %ld %ld %ld %ld", vmrss, vmhwm, anon, file);
}

static void run(char *line);

static void *run_thread(void *arg) { run(arg); return NULL; }

static void run(char *line) {
    char cmd[32] = "", a[4096] = "", b[4096] = "", c[4096] = "";
    int n = 0;
    sscanf(line, "%31s", cmd);
    if (strcmp(cmd, "register") == 0) {
        struct flb_plugin_proxy_def def;
        memset(&def, 0, sizeof def);
        int rc = p_register(&def);
        say("register %d type=%d proxy=%d name=%s", rc, def.type, def.proxy, def.name ? def.name : "");
    } else if (strcmp(cmd, "prop") == 0) {
        int off = 0;
        if (sscanf(line, "%*s %d %4095s %n", &n, a, &off) < 2 || n < 0 || n >= MAXI) { say("prop error"); return; }
        char *val = line + off;
        val[strcspn(val, "\n")] = 0;
        struct instance *in = &inst[n];
        in->keys[in->np] = strdup(a);
        in->vals[in->np] = strdup(val);
        in->np++;
        say("prop %d %s", n, a);
    } else if (strcmp(cmd, "init") == 0) {
        sscanf(line, "%*s %d", &n);
        struct instance *in = &inst[n];
        in->api.output_get_property = get_property;
        in->plugin.api = &in->api;
        in->plugin.o_ins = in;
        in->plugin.context = &in->ctx;
        int rc = p_init(&in->plugin);
        say("init %d %d", n, rc);
    } else if (strcmp(cmd, "flush") == 0) {
        sscanf(line, "%*s %d %4095s %4095s", &n, a, b);
        say("flush %d %d", n, flush_file(n, a, b));
    } else if (strcmp(cmd, "flushdir") == 0) {
        int threads = 1;
        sscanf(line, "%*s %d %4095s %4095s %d", &n, a, b, &threads);
        flushdir(n, a, b, threads);
    } else if (strcmp(cmd, "exit") == 0) {
        sscanf(line, "%*s %d", &n);
        say("exit %d %d", n, p_exitctx(inst[n].ctx.remote_context));
    } else if (strcmp(cmd, "exitall") == 0) {
        say("exitall %d", p_exit());
    } else if (strcmp(cmd, "rss") == 0) {
        rss();
    } else {
        say("unknown %s", cmd);
    }
    (void)c;
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: harness PLUGIN.so\n"); return 2; }
    reply = fdopen(3, "w");
    if (!reply) reply = stdout;
    void *h = dlopen(argv[1], RTLD_LAZY); /* as flb_plugin_proxy_create */
    if (!h) { say("dlopen %s", dlerror()); return 1; }
    p_register = dlsym(h, "FLBPluginRegister");
    p_init = dlsym(h, "FLBPluginInit");
    p_flush = dlsym(h, "FLBPluginFlushCtx");
    p_exitctx = dlsym(h, "FLBPluginExitCtx");
    p_exit = dlsym(h, "FLBPluginExit");
    if (!p_register || !p_init || !p_flush || !p_exitctx || !p_exit) { say("dlsym missing symbols"); return 1; }
    say("ready");
    char line[16384];
    char *par[16];
    int npar = -1;
    while (fgets(line, sizeof line, stdin)) {
        if (strncmp(line, "quit", 4) == 0) break;
        if (strncmp(line, "par", 3) == 0) { npar = 0; continue; }
        if (strncmp(line, "end", 3) == 0 && npar >= 0) {
            pthread_t th[16];
            for (int i = 0; i < npar; i++) pthread_create(&th[i], NULL, run_thread, par[i]);
            for (int i = 0; i < npar; i++) { pthread_join(th[i], NULL); free(par[i]); }
            npar = -1;
            continue;
        }
        if (npar >= 0) { if (npar < 16) par[npar++] = strdup(line); continue; }
        run(line);
    }
    say("bye");
    return 0;
}

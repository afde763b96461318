/*
 * A fake libnvidia-ml.so.1 for carbontop's tests: it exports the NVML functions carbontop calls
 * (through nvml-wrapper 0.13 / nvml-wrapper-sys 0.10, whose bindings resolve each symbol
 * lazily, so only those are needed) with NVML's signatures and return codes (nvml.h), and plays
 * the scenario file named by FAKE_NVML_SCENARIO (format: tests/fake_nvml/README.md).
 *
 * Shared state: the caps live in the file named by FAKE_NVML_STATE (written whole to a
 * temporary file and renamed, so a reader never sees half of it; writers serialise on flock of
 * FAKE_NVML_STATE.lock), shared by every process that loads the library, with the scenario's
 * time origin and the history of every cap set. FAKE_NVML_LOG, when set, gets one line per
 * power or energy reading served, so a test knows exactly what carbontop was told.
 *
 * Built by the test harness (tests/common/fake_nvml.rs): cc -shared -fPIC -O1 -o
 * DIR/libnvidia-ml.so.1 fake_nvml.c. No GPU, no driver, no root needed.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

/* nvml.h: nvmlReturn_t (an enum, int-sized). */
typedef int nvmlReturn_t;
enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_UNINITIALIZED = 1,
    NVML_ERROR_INVALID_ARGUMENT = 2,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_NO_PERMISSION = 4,
    NVML_ERROR_ALREADY_INITIALIZED = 5,
    NVML_ERROR_NOT_FOUND = 6,
    NVML_ERROR_INSUFFICIENT_SIZE = 7,
    NVML_ERROR_INSUFFICIENT_POWER = 8,
    NVML_ERROR_DRIVER_NOT_LOADED = 9,
    NVML_ERROR_TIMEOUT = 10,
    NVML_ERROR_IRQ_ISSUE = 11,
    NVML_ERROR_LIBRARY_NOT_FOUND = 12,
    NVML_ERROR_FUNCTION_NOT_FOUND = 13,
    NVML_ERROR_CORRUPTED_INFOROM = 14,
    NVML_ERROR_GPU_IS_LOST = 15,
    NVML_ERROR_RESET_REQUIRED = 16,
    NVML_ERROR_OPERATING_SYSTEM = 17,
    NVML_ERROR_LIB_RM_VERSION_MISMATCH = 18,
    NVML_ERROR_IN_USE = 19,
    NVML_ERROR_MEMORY = 20,
    NVML_ERROR_NO_DATA = 21,
    NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25,
    NVML_ERROR_UNKNOWN = 999,
};

/* nvml.h structures, as nvml-wrapper-sys 0.10's bindings lay them out. */
typedef struct {
    unsigned int gpu;
    unsigned int memory;
} nvmlUtilization_t;

typedef struct {
    unsigned long long total;
    unsigned long long free;
    unsigned long long used;
} nvmlMemory_t;

typedef struct {
    unsigned int version;
    unsigned long long total;
    unsigned long long reserved;
    unsigned long long free;
    unsigned long long used;
} nvmlMemory_v2_t;
/* NVML_STRUCT_VERSION(Memory, 2) */
#define nvmlMemory_v2 ((unsigned int)(sizeof(nvmlMemory_v2_t) | (2u << 24)))

/* nvmlProcessInfo_t (nvmlProcessInfo_v2_st), filled by ...ComputeRunningProcesses_v3. */
typedef struct {
    unsigned int pid;
    unsigned long long usedGpuMemory;
    unsigned int gpuInstanceId;
    unsigned int computeInstanceId;
} nvmlProcessInfo_t;

typedef struct {
    unsigned int pid;
    unsigned long long timeStamp;
    unsigned int smUtil;
    unsigned int memUtil;
    unsigned int encUtil;
    unsigned int decUtil;
} nvmlProcessUtilizationSample_t;

typedef struct {
    char busIdLegacy[16];
    unsigned int domain;
    unsigned int bus;
    unsigned int device;
    unsigned int pciDeviceId;
    unsigned int pciSubSystemId;
    char busId[32];
} nvmlPciInfo_t;

#define MAX_GPUS 64
#define MAX_STEPS 128
#define MAX_PROCS 32
#define MAX_MIGS_PER_GPU 7
#define NOT_AVAILABLE 0xFFFFFFFFu

struct step {
    double t;  /* s since the scenario's origin */
    double mw; /* from t on */
};

struct proc {
    int child; /* 1: every child process of the process that loaded the library */
    unsigned int pid;
    unsigned long long mem_mib;
    unsigned int sm;
};

struct nvmlDevice_st {
    unsigned int index;
    unsigned int minor; /* /dev/nvidiaN */
    int nmigs;
    char mig_uuids[MAX_MIGS_PER_GPU][96]; /* MIG devices on it (new-style MIG-<uuid>) */
    char name[96];
    char uuid[96];
    char pci_bus_id[32];
    int nsteps;
    struct step power[MAX_STEPS];
    int ntrue; /* 0: the counter integrates `power` */
    struct step true_power[MAX_STEPS];
    nvmlReturn_t power_answer;
    nvmlReturn_t energy_answer;
    unsigned long long energy_start_mj;
    nvmlReturn_t caps_answer;
    unsigned int cap_min, cap_max, cap_default, cap_initial;
    nvmlReturn_t set_answer;
    nvmlReturn_t util_answer;
    unsigned int util_gpu, util_mem;
    nvmlReturn_t clock_answer;
    unsigned long long sm_clock_mhz;
    unsigned long long mem_total_mib, mem_used_mib;
    double lost_after; /* < 0: never */
    char lost_file[512]; /* lost once this file exists (a test decides when) */
    nvmlReturn_t mig_answer;
    unsigned int mig;
    nvmlReturn_t procs_answer;
    nvmlReturn_t proc_util_answer;
    int nprocs;
    struct proc procs[MAX_PROCS];
};

typedef struct nvmlDevice_st *nvmlDevice_t;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int refcount;
static int parsed; /* 1 parsed, -1 failed */
static nvmlReturn_t init_answer = NVML_SUCCESS;
static char driver_version[80] = "550.54.15";
static unsigned int ngpus = 1;
static struct nvmlDevice_st devs[MAX_GPUS];
/* MIG device handles: mig_devs[g * MAX_MIGS_PER_GPU + k] is MIG device k of GPU g. */
static struct nvmlDevice_st mig_devs[MAX_GPUS * MAX_MIGS_PER_GPU];
static long long t0_ns = -1;

static void complain(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fake NVML: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static long long mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Seconds since the scenario's origin (the first load by any process sharing the state). */
static double now_s(void) { return (double)(mono_ns() - t0_ns) / 1e9; }

/* ---- the scenario file ---- */

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = 0;
    if (e - s >= 2 && s[0] == '"' && e[-1] == '"') {
        e[-1] = 0;
        s++;
    }
    return s;
}

static int parse_answer(const char *v, nvmlReturn_t *out)
{
    static const struct {
        const char *name;
        nvmlReturn_t code;
    } names[] = {
        {"success", NVML_SUCCESS},
        {"supported", NVML_SUCCESS},
        {"counter", NVML_SUCCESS},
        {"uninitialized", NVML_ERROR_UNINITIALIZED},
        {"invalid_argument", NVML_ERROR_INVALID_ARGUMENT},
        {"not_supported", NVML_ERROR_NOT_SUPPORTED},
        {"no_permission", NVML_ERROR_NO_PERMISSION},
        {"not_found", NVML_ERROR_NOT_FOUND},
        {"driver_not_loaded", NVML_ERROR_DRIVER_NOT_LOADED},
        {"timeout", NVML_ERROR_TIMEOUT},
        {"gpu_is_lost", NVML_ERROR_GPU_IS_LOST},
        {"lib_rm_version_mismatch", NVML_ERROR_LIB_RM_VERSION_MISMATCH},
        {"unknown", NVML_ERROR_UNKNOWN},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(v, names[i].name) == 0) {
            *out = names[i].code;
            return 0;
        }
    char *end;
    long n = strtol(v, &end, 10);
    if (*v && !*end) {
        *out = (nvmlReturn_t)n;
        return 0;
    }
    return -1;
}

static int parse_uint(const char *v, unsigned long long *out)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (!*v || *end || errno)
        return -1;
    *out = n;
    return 0;
}

static int parse_double(const char *v, double *out)
{
    char *end;
    double d = strtod(v, &end);
    if (!*v || *end)
        return -1;
    *out = d;
    return 0;
}

/* "T:MW T:MW ...": from T seconds on, MW milliwatts; in increasing T. */
static int parse_trace(char *v, struct step *steps, int *n)
{
    *n = 0;
    for (char *tok = strtok(v, " \t,"); tok; tok = strtok(NULL, " \t,")) {
        char *colon = strchr(tok, ':');
        if (!colon || *n >= MAX_STEPS)
            return -1;
        *colon = 0;
        if (parse_double(tok, &steps[*n].t) || parse_double(colon + 1, &steps[*n].mw))
            return -1;
        if (*n > 0 && steps[*n].t <= steps[*n - 1].t)
            return -1;
        (*n)++;
    }
    return *n > 0 ? 0 : -1;
}

/* "PID:MEM_MIB:SM ...", PID a number or `child`. */
static int parse_procs(char *v, struct nvmlDevice_st *d)
{
    d->nprocs = 0;
    for (char *tok = strtok(v, " \t,"); tok; tok = strtok(NULL, " \t,")) {
        struct proc *p = &d->procs[d->nprocs];
        char pid[32];
        unsigned long long mem, sm;
        if (d->nprocs >= MAX_PROCS || sscanf(tok, "%31[^:]:%llu:%llu", pid, &mem, &sm) != 3)
            return -1;
        unsigned long long n = 0;
        p->child = strcmp(pid, "child") == 0;
        if (!p->child && parse_uint(pid, &n))
            return -1;
        p->pid = (unsigned int)n;
        p->mem_mib = mem;
        p->sm = (unsigned int)sm;
        d->nprocs++;
    }
    return 0;
}

static void defaults(struct nvmlDevice_st *d, unsigned int i)
{
    memset(d, 0, sizeof *d);
    d->index = i;
    d->minor = i;
    snprintf(d->name, sizeof d->name, "NVIDIA A100-SXM4-40GB");
    snprintf(d->uuid, sizeof d->uuid, "GPU-00000000-0000-4000-8000-%012x", i);
    snprintf(d->pci_bus_id, sizeof d->pci_bus_id, "00000000:%02X:00.0", 0x10 + i);
    d->nsteps = 1;
    d->power[0].t = 0;
    d->power[0].mw = 100000;
    d->cap_min = 100000;
    d->cap_max = 400000;
    d->cap_default = 400000;
    d->cap_initial = 0; /* the default */
    d->util_gpu = 50;
    d->util_mem = 20;
    d->sm_clock_mhz = 1410;
    d->mem_total_mib = 40960;
    d->mem_used_mib = 1024;
    d->lost_after = -1;
    d->procs_answer = NVML_SUCCESS;
    d->proc_util_answer = NVML_SUCCESS;
}

/* The MIG keys of a GPU's section: in the MIG block at the end of this file. */
static int mig_key(struct nvmlDevice_st *d, const char *k, char *v);

/* One `key = value` of a GPU's section. */
static int gpu_key(struct nvmlDevice_st *d, const char *k, char *v)
{
    unsigned long long n;
    if (!strcmp(k, "name"))
        snprintf(d->name, sizeof d->name, "%s", v);
    else if (!strcmp(k, "uuid"))
        snprintf(d->uuid, sizeof d->uuid, "%s", v);
    else if (!strcmp(k, "pci_bus_id"))
        snprintf(d->pci_bus_id, sizeof d->pci_bus_id, "%s", v);
    else if (!strcmp(k, "minor")) {
        if (parse_uint(v, &n) || n > 0xFFFFFFFFull)
            return -1;
        d->minor = (unsigned int)n;
    } else if (!strcmp(k, "mig_devices")) {
        d->nmigs = 0;
        for (char *tok = strtok(v, " \t,"); tok; tok = strtok(NULL, " \t,")) {
            if (d->nmigs >= MAX_MIGS_PER_GPU)
                return -1;
            snprintf(d->mig_uuids[d->nmigs++], sizeof d->mig_uuids[0], "%s", tok);
        }
    }
    else if (!strcmp(k, "power_mw"))
        return strcmp(v, "not_supported") == 0 ? (d->power_answer = NVML_ERROR_NOT_SUPPORTED, 0)
                                               : parse_trace(v, d->power, &d->nsteps);
    else if (!strcmp(k, "true_power_mw"))
        return parse_trace(v, d->true_power, &d->ntrue);
    else if (!strcmp(k, "energy"))
        return parse_answer(v, &d->energy_answer);
    else if (!strcmp(k, "energy_start_mj"))
        return parse_uint(v, &d->energy_start_mj);
    else if (!strcmp(k, "caps"))
        return parse_answer(v, &d->caps_answer);
    else if (!strcmp(k, "set_limit"))
        return parse_answer(v, &d->set_answer);
    else if (!strcmp(k, "cap_min_mw") || !strcmp(k, "cap_max_mw") ||
             !strcmp(k, "cap_default_mw") || !strcmp(k, "cap_mw")) {
        if (parse_uint(v, &n) || n > 0xFFFFFFFFull)
            return -1;
        unsigned int *f = !strcmp(k, "cap_min_mw")   ? &d->cap_min
                          : !strcmp(k, "cap_max_mw") ? &d->cap_max
                          : !strcmp(k, "cap_mw")     ? &d->cap_initial
                                                     : &d->cap_default;
        *f = (unsigned int)n;
    } else if (!strcmp(k, "utilization"))
        return parse_answer(v, &d->util_answer);
    else if (!strcmp(k, "util_gpu") || !strcmp(k, "util_mem")) {
        if (parse_uint(v, &n) || n > 100)
            return -1;
        *(!strcmp(k, "util_gpu") ? &d->util_gpu : &d->util_mem) = (unsigned int)n;
    } else if (!strcmp(k, "clock"))
        return parse_answer(v, &d->clock_answer);
    else if (!strcmp(k, "sm_clock_mhz"))
        return parse_uint(v, &d->sm_clock_mhz);
    else if (!strcmp(k, "mem_total_mib"))
        return parse_uint(v, &d->mem_total_mib);
    else if (!strcmp(k, "mem_used_mib"))
        return parse_uint(v, &d->mem_used_mib);
    else if (!strcmp(k, "lost_after_s"))
        return parse_double(v, &d->lost_after);
    else if (!strcmp(k, "lost_when_exists"))
        snprintf(d->lost_file, sizeof d->lost_file, "%s", v);
    else if (!strcmp(k, "mig")) {
        if (!strcmp(v, "enabled"))
            d->mig = 1;
        else if (!strcmp(v, "disabled"))
            d->mig = 0;
        else
            return parse_answer(v, &d->mig_answer);
    } else if (!strcmp(k, "procs"))
        return parse_procs(v, d);
    else if (!strcmp(k, "procs_query"))
        return parse_answer(v, &d->procs_answer);
    else if (!strcmp(k, "proc_util"))
        return parse_answer(v, &d->proc_util_answer);
    else
        return mig_key(d, k, v);
    return 0;
}

/*
 * Reads the scenario. GPUs are counted by `gpus = N`; `[gpu.*]` keys apply to every GPU and
 * `[gpu.K]` keys to GPU K, whatever their order in the file.
 */
static int parse_scenario(void)
{
    const char *path = getenv("FAKE_NVML_SCENARIO");
    if (!path || !*path) {
        complain("FAKE_NVML_SCENARIO is not set");
        return -1;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        complain("%s: %s", path, strerror(errno));
        return -1;
    }
    for (unsigned int i = 0; i < MAX_GPUS; i++)
        defaults(&devs[i], i);
    /* Two passes: global and [gpu.*] keys, then [gpu.K] ones, so a specific key wins. */
    int rc = 0;
    for (int pass = 0; pass < 2 && rc == 0; pass++) {
        rewind(f);
        char line[8192];
        int lineno = 0;
        long section = -2; /* -2 global, -1 gpu.*, K gpu.K */
        while (fgets(line, sizeof line, f)) {
            lineno++;
            char *hash = strchr(line, '#');
            if (hash)
                *hash = 0;
            char *s = trim(line);
            if (!*s)
                continue;
            if (*s == '[') {
                char *end = strchr(s, ']');
                if (!end || strncmp(s, "[gpu.", 5) != 0) {
                    complain("%s:%d: unknown section %s", path, lineno, s);
                    rc = -1;
                    break;
                }
                *end = 0;
                if (!strcmp(s + 5, "*"))
                    section = -1;
                else {
                    unsigned long long k;
                    if (parse_uint(s + 5, &k) || k >= MAX_GPUS) {
                        complain("%s:%d: bad GPU section", path, lineno);
                        rc = -1;
                        break;
                    }
                    section = (long)k;
                }
                continue;
            }
            char *eq = strchr(s, '=');
            if (!eq) {
                complain("%s:%d: want key = value", path, lineno);
                rc = -1;
                break;
            }
            *eq = 0;
            char *k = trim(s), *v = trim(eq + 1);
            int bad = 0;
            if (section == -2) {
                if (pass == 1)
                    continue;
                unsigned long long n;
                if (!strcmp(k, "init"))
                    bad = parse_answer(v, &init_answer);
                else if (!strcmp(k, "driver_version"))
                    snprintf(driver_version, sizeof driver_version, "%s", v);
                else if (!strcmp(k, "gpus")) {
                    bad = parse_uint(v, &n) || n > MAX_GPUS;
                    ngpus = (unsigned int)n;
                } else
                    bad = -2;
            } else if ((section == -1) == (pass == 0)) {
                if (section == -1)
                    for (unsigned int i = 0; i < MAX_GPUS && !bad; i++) {
                        char copy[8192];
                        snprintf(copy, sizeof copy, "%s", v);
                        bad = gpu_key(&devs[i], k, copy);
                    }
                else
                    bad = gpu_key(&devs[section], k, v);
            }
            if (bad) {
                complain("%s:%d: %s %s", path, lineno, bad == -2 ? "unknown key" : "bad value for",
                         k);
                rc = -1;
                break;
            }
        }
    }
    fclose(f);
    for (unsigned int i = 0; i < MAX_GPUS; i++) {
        devs[i].index = i;
        if (devs[i].cap_initial == 0)
            devs[i].cap_initial = devs[i].cap_default;
        for (int k = 0; k < devs[i].nmigs; k++) {
            struct nvmlDevice_st *m = &mig_devs[i * MAX_MIGS_PER_GPU + k];
            memset(m, 0, sizeof *m);
            m->index = i; /* its parent's */
            m->lost_after = -1;
            snprintf(m->uuid, sizeof m->uuid, "%s", devs[i].mig_uuids[k]);
        }
    }
    return rc;
}

/* ---- the shared state file ---- */

struct state {
    long long t0_ns;
    unsigned int caps[MAX_GPUS];
    char *history; /* `set ...` lines, newline-terminated */
    size_t history_len;
};

static const char *state_path(void)
{
    const char *p = getenv("FAKE_NVML_STATE");
    return p && *p ? p : NULL;
}

/* Locks the state (flock on STATE.lock); the fd to unlock with, or -1. */
static int state_lock(int how)
{
    const char *p = state_path();
    if (!p)
        return -1;
    char lock[4096];
    snprintf(lock, sizeof lock, "%s.lock", p);
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    while (flock(fd, how) != 0 && errno == EINTR)
        ;
    return fd;
}

static void state_unlock(int fd)
{
    if (fd >= 0)
        close(fd); /* releases the flock */
}

/* Reads the state; 0 when there is none yet (caps at the scenario's initial ones). */
static int state_read(struct state *st)
{
    st->t0_ns = -1;
    for (unsigned int i = 0; i < MAX_GPUS; i++)
        st->caps[i] = devs[i].cap_initial;
    st->history = NULL;
    st->history_len = 0;
    const char *p = state_path();
    if (!p)
        return 0;
    FILE *f = fopen(p, "r");
    if (!f)
        return 0;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        long long t;
        unsigned int gpu, mw;
        if (sscanf(line, "t0_ns %lld", &t) == 1)
            st->t0_ns = t;
        else if (sscanf(line, "cap %u %u", &gpu, &mw) == 2 && gpu < MAX_GPUS)
            st->caps[gpu] = mw;
        else if (strncmp(line, "set ", 4) == 0) {
            size_t n = strlen(line);
            char *h = realloc(st->history, st->history_len + n + 1);
            if (!h)
                break;
            memcpy(h + st->history_len, line, n + 1);
            st->history = h;
            st->history_len += n;
        }
    }
    fclose(f);
    return 1;
}

static void state_write(const struct state *st, const char *extra)
{
    const char *p = state_path();
    if (!p)
        return;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", p, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) {
        complain("%s: %s", tmp, strerror(errno));
        return;
    }
    fprintf(f, "t0_ns %lld\n", st->t0_ns);
    for (unsigned int i = 0; i < ngpus; i++)
        fprintf(f, "cap %u %u\n", i, st->caps[i]);
    if (st->history)
        fputs(st->history, f);
    if (extra)
        fputs(extra, f);
    if (fclose(f) != 0 || rename(tmp, p) != 0)
        complain("%s: %s", p, strerror(errno));
}

/* The origin of time: the state's, or now (the first process to load the library). */
static void state_init(void)
{
    if (!state_path()) {
        if (t0_ns < 0)
            t0_ns = mono_ns();
        return;
    }
    int fd = state_lock(LOCK_EX);
    struct state st;
    state_read(&st);
    if (st.t0_ns < 0) {
        st.t0_ns = mono_ns();
        state_write(&st, NULL);
    }
    t0_ns = st.t0_ns;
    free(st.history);
    state_unlock(fd);
}

static unsigned int cap_now(unsigned int gpu)
{
    int fd = state_lock(LOCK_SH);
    struct state st;
    state_read(&st);
    free(st.history);
    state_unlock(fd);
    return st.caps[gpu];
}

/* One line per reading served, for the tests: `T_S PID WHAT GPU VALUE`. */
static void log_served(const char *what, unsigned int gpu, unsigned long long value, double t)
{
    const char *p = getenv("FAKE_NVML_LOG");
    if (!p || !*p)
        return;
    char line[160];
    int n = snprintf(line, sizeof line, "%.9f %d %s %u %llu\n", t, (int)getpid(), what, gpu, value);
    int fd = open(p, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    ssize_t w = write(fd, line, (size_t)n); /* one write with O_APPEND: lines never interleave */
    (void)w;
    close(fd);
}

/* ---- traces ---- */

static double trace_at(const struct step *s, int n, double t)
{
    double v = s[0].mw;
    for (int i = 0; i < n && s[i].t <= t; i++)
        v = s[i].mw;
    return v;
}

/* ∫_0^t of the trace, in mJ (mW × s); the first value holds before its time. */
static double trace_integral(const struct step *s, int n, double t)
{
    double e = 0, from = 0;
    for (int i = 0; i < n; i++) {
        double until = i + 1 < n ? s[i + 1].t : t;
        if (until > t)
            until = t;
        if (until > from)
            e += s[i].mw * (until - from);
        if (until > from)
            from = until;
        if (from >= t)
            break;
    }
    return e;
}

/* ---- entry points ---- */

static nvmlReturn_t check(nvmlDevice_t d, double *t)
{
    if (refcount <= 0)
        return NVML_ERROR_UNINITIALIZED;
    uintptr_t p = (uintptr_t)d, lo = (uintptr_t)devs, hi = (uintptr_t)(devs + ngpus);
    if (p < lo || p >= hi || (p - lo) % sizeof devs[0] != 0)
        return NVML_ERROR_INVALID_ARGUMENT;
    *t = now_s();
    if ((d->lost_after >= 0 && *t >= d->lost_after) ||
        (d->lost_file[0] && access(d->lost_file, F_OK) == 0))
        return NVML_ERROR_GPU_IS_LOST;
    return NVML_SUCCESS;
}

#define ENTER()                                                                                    \
    pthread_mutex_lock(&mu);                                                                       \
    nvmlReturn_t rc_ = NVML_SUCCESS;                                                               \
    double t_ = 0;                                                                                 \
    (void)t_
#define LEAVE(code)                                                                                \
    do {                                                                                           \
        rc_ = (code);                                                                              \
        goto out_;                                                                                 \
    } while (0)
#define EXIT()                                                                                     \
    out_:                                                                                          \
    pthread_mutex_unlock(&mu);                                                                     \
    return rc_
#define DEVICE(d)                                                                                  \
    do {                                                                                           \
        nvmlReturn_t c_ = check((d), &t_);                                                         \
        if (c_ != NVML_SUCCESS)                                                                    \
            LEAVE(c_);                                                                             \
    } while (0)

EXPORT nvmlReturn_t nvmlInit_v2(void)
{
    ENTER();
    if (!parsed)
        parsed = parse_scenario() == 0 ? 1 : -1;
    if (parsed < 0)
        LEAVE(NVML_ERROR_UNKNOWN);
    if (init_answer != NVML_SUCCESS)
        LEAVE(init_answer);
    if (refcount == 0)
        state_init();
    refcount++;
    EXIT();
}

EXPORT nvmlReturn_t nvmlInit(void) { return nvmlInit_v2(); }

EXPORT nvmlReturn_t nvmlInitWithFlags(unsigned int flags)
{
    (void)flags;
    return nvmlInit_v2();
}

EXPORT nvmlReturn_t nvmlShutdown(void)
{
    ENTER();
    if (refcount <= 0)
        LEAVE(NVML_ERROR_UNINITIALIZED);
    refcount--;
    EXIT();
}

EXPORT const char *nvmlErrorString(nvmlReturn_t r)
{
    switch (r) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_NO_PERMISSION: return "Insufficient Permissions";
    case NVML_ERROR_ALREADY_INITIALIZED: return "Already Initialized";
    case NVML_ERROR_NOT_FOUND: return "Not Found";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
    case NVML_ERROR_ARGUMENT_VERSION_MISMATCH: return "Argument version mismatch";
    default: return "Unknown Error";
    }
}

static nvmlReturn_t copy_string(char *dst, unsigned int len, const char *src)
{
    if (!dst)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (strlen(src) + 1 > len)
        return NVML_ERROR_INSUFFICIENT_SIZE;
    memcpy(dst, src, strlen(src) + 1);
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length)
{
    ENTER();
    if (refcount <= 0)
        LEAVE(NVML_ERROR_UNINITIALIZED);
    LEAVE(copy_string(version, length, driver_version));
    EXIT();
}

EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count)
{
    ENTER();
    if (refcount <= 0)
        LEAVE(NVML_ERROR_UNINITIALIZED);
    if (!count)
        LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    *count = ngpus;
    EXIT();
}

EXPORT nvmlReturn_t nvmlDeviceGetCount(unsigned int *count) { return nvmlDeviceGetCount_v2(count); }

EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device)
{
    ENTER();
    if (refcount <= 0)
        LEAVE(NVML_ERROR_UNINITIALIZED);
    if (index >= ngpus || !device)
        LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    DEVICE(&devs[index]);
    *device = &devs[index];
    EXIT();
}

EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t *device)
{
    return nvmlDeviceGetHandleByIndex_v2(index, device);
}

EXPORT nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *uuid, nvmlDevice_t *device)
{
    ENTER();
    if (refcount <= 0)
        LEAVE(NVML_ERROR_UNINITIALIZED);
    if (!uuid || !device)
        LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    for (unsigned int i = 0; i < ngpus; i++) {
        if (strcmp(devs[i].uuid, uuid) == 0) {
            DEVICE(&devs[i]);
            *device = &devs[i];
            LEAVE(NVML_SUCCESS);
        }
        for (int k = 0; k < devs[i].nmigs; k++)
            if (strcmp(devs[i].mig_uuids[k], uuid) == 0) {
                DEVICE(&devs[i]);
                *device = &mig_devs[i * MAX_MIGS_PER_GPU + k];
                LEAVE(NVML_SUCCESS);
            }
    }
    LEAVE(NVML_ERROR_NOT_FOUND);
    EXIT();
}

/* The GPU a MIG handle is on; NULL when `d` is no MIG handle this library gave. */
static struct nvmlDevice_st *mig_parent(nvmlDevice_t d)
{
    uintptr_t p = (uintptr_t)d, lo = (uintptr_t)mig_devs, hi = (uintptr_t)(mig_devs + MAX_GPUS * MAX_MIGS_PER_GPU);
    if (p < lo || p >= hi || (p - lo) % sizeof mig_devs[0] != 0)
        return NULL;
    size_t k = (p - lo) / sizeof mig_devs[0];
    if ((int)(k % MAX_MIGS_PER_GPU) >= devs[k / MAX_MIGS_PER_GPU].nmigs)
        return NULL;
    return &devs[k / MAX_MIGS_PER_GPU];
}

EXPORT nvmlReturn_t nvmlDeviceIsMigDeviceHandle(nvmlDevice_t d, unsigned int *is_mig)
{
    ENTER();
    if (refcount <= 0)
        LEAVE(NVML_ERROR_UNINITIALIZED);
    if (!is_mig)
        LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    if (mig_parent(d)) {
        *is_mig = 1;
        LEAVE(NVML_SUCCESS);
    }
    DEVICE(d);
    *is_mig = 0;
    EXIT();
}

EXPORT nvmlReturn_t nvmlDeviceGetDeviceHandleFromMigDeviceHandle(nvmlDevice_t mig,
                                                                 nvmlDevice_t *device)
{
    ENTER();
    if (refcount <= 0)
        LEAVE(NVML_ERROR_UNINITIALIZED);
    struct nvmlDevice_st *parent = mig_parent(mig);
    if (!parent || !device)
        LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    DEVICE(parent);
    *device = parent;
    EXIT();
}

EXPORT nvmlReturn_t nvmlDeviceGetHandleByPciBusId_v2(const char *bus_id, nvmlDevice_t *device)
{
    ENTER();
    if (refcount <= 0)
        LEAVE(NVML_ERROR_UNINITIALIZED);
    if (!bus_id || !device)
        LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    for (unsigned int i = 0; i < ngpus; i++)
        if (strcasecmp(devs[i].pci_bus_id, bus_id) == 0) {
            DEVICE(&devs[i]);
            *device = &devs[i];
            LEAVE(NVML_SUCCESS);
        }
    LEAVE(NVML_ERROR_NOT_FOUND);
    EXIT();
}

EXPORT nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t d, unsigned int *index)
{
    ENTER();
    DEVICE(d);
    if (!index)
        LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    *index = d->index;
    EXIT();
}

EXPORT nvmlReturn_t nvmlDeviceGetMinorNumber(nvmlDevice_t d, unsigned int *minor)
{
    ENTER();
    DEVICE(d);
    if (!minor)
        LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    *minor = d->minor;
    EXIT();
}

EXPORT nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char *name, unsigned int length)
{
    ENTER();
    DEVICE(d);
    LEAVE(copy_string(name, length, d->name));
    EXIT();
}

EXPORT nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t d, char *uuid, unsigned int length)
{
    ENTER();
    DEVICE(d);
    LEAVE(copy_string(uuid, length, d->uuid));
    EXIT();
}

EXPORT nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t d, nvmlPciInfo_t *pci)
{
    ENTER();
    DEVICE(d);
    if (!pci)
        LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    memset(pci, 0, sizeof *pci);
    snprintf(pci->busId, sizeof pci->busId, "%s", d->pci_bus_id);
    unsigned int dom = 0, bus = 0, dev = 0, fn = 0;
    sscanf(d->pci_bus_id, "%x:%x:%x.%x", &dom, &bus, &dev, &fn);
    snprintf(pci->busIdLegacy, sizeof pci->busIdLegacy, "%04x:%02x:%02x.%x", dom, bus, dev, fn);
    pci->domain = dom;
    pci->bus = bus;
    pci->device = dev;
    pci->pciDeviceId = 0x20B010DE; /* an A100's device and NVIDIA's vendor id */
    pci->pciSubSystemId = 0x134F10DE;
    EXIT();
}

EXPORT nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t d, unsigned int *power)
{
    ENTER();
    DEVICE(d);
    if (!power)
        LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    if (d->power_answer != NVML_SUCCESS)
        LEAVE(d->power_answer);
    *power = (unsigned int)trace_at(d->power, d->nsteps, t_);
    log_served("power", d->index, *power, t_);
    EXIT();
}

EXPORT nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t d, unsigned long long *energy)
{
    ENTER();
    DEVICE(d);
    if (!energy)
        LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    if (d->energy_answer != NVML_SUCCESS)
        LEAVE(d->energy_answer);
    const struct step *s = d->ntrue ? d->true_power : d->power;
    int n = d->ntrue ? d->ntrue : d->nsteps;
    *energy = d->energy_start_mj + (unsigned long long)trace_integral(s, n, t_);
    log_served("energy", d->index, *energy, t_);
    EXIT();
}

EXPORT nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t d, nvmlUtilization_t *u)
{
    ENTER();
    DEVICE(d);
    if (!u)
        LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    if (d->util_answer != NVML_SUCCESS)
        LEAVE(d->util_answer);
    u->gpu = d->util_gpu;
    u->memory = d->util_mem;
    EXIT();
}

/* nvmlClockType_t: NVML_CLOCK_GRAPHICS 0, NVML_CLOCK_SM 1, NVML_CLOCK_MEM 2, NVML_CLOCK_VIDEO 3. */
EXPORT nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t d, int type, unsigned int *clock)
{
    ENTER();
    DEVICE(d);
    if (!clock || type < 0 || type > 3)
        LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    if (d->clock_answer != NVML_SUCCESS)
        LEAVE(d->clock_answer);
    if (type != 1)
        LEAVE(NVML_ERROR_NOT_SUPPORTED);
    *clock = (unsigned int)d->sm_clock_mhz;
    EXIT();
}

EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t *m)
{
    ENTER();
    DEVICE(d);
    if (!m)
        LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    m->total = d->mem_total_mib << 20;
    m->used = d->mem_used_mib << 20;
    m->free = m->total - m->used;
    EXIT();
}

EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t d, nvmlMemory_v2_t *m)
{
    ENTER();
    DEVICE(d);
    if (!m)
        LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    if (m->version != nvmlMemory_v2)
        LEAVE(NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
    m->total = d->mem_total_mib << 20;
    m->reserved = 0;
    m->used = d->mem_used_mib << 20;
    m->free = m->total - m->used;
    EXIT();
}

EXPORT nvmlReturn_t nvmlDeviceGetPowerManagementLimitConstraints(nvmlDevice_t d,
                                                                unsigned int *min_limit,
                                                                unsigned int *max_limit)
{
    ENTER();
    DEVICE(d);
    if (!min_limit || !max_limit)
        LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    if (d->caps_answer != NVML_SUCCESS)
        LEAVE(d->caps_answer);
    *min_limit = d->cap_min;
    *max_limit = d->cap_max;
    EXIT();
}

EXPORT nvmlReturn_t nvmlDeviceGetPowerManagementDefaultLimit(nvmlDevice_t d, unsigned int *limit)
{
    ENTER();
    DEVICE(d);
    if (!limit)
        LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    if (d->caps_answer != NVML_SUCCESS)
        LEAVE(d->caps_answer);
    *limit = d->cap_default;
    EXIT();
}

EXPORT nvmlReturn_t nvmlDeviceGetPowerManagementLimit(nvmlDevice_t d, unsigned int *limit)
{
    ENTER();
    DEVICE(d);
    if (!limit)
        LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    if (d->caps_answer != NVML_SUCCESS)
        LEAVE(d->caps_answer);
    *limit = cap_now(d->index);
    EXIT();
}

EXPORT nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t d, unsigned int *limit)
{
    ENTER();
    DEVICE(d);
    if (!limit)
        LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    if (d->caps_answer != NVML_SUCCESS)
        LEAVE(d->caps_answer);
    *limit = cap_now(d->index);
    EXIT();
}

EXPORT nvmlReturn_t nvmlDeviceSetPowerManagementLimit(nvmlDevice_t d, unsigned int limit)
{
    ENTER();
    DEVICE(d);
    if (d->caps_answer != NVML_SUCCESS)
        LEAVE(d->caps_answer);
    if (d->set_answer != NVML_SUCCESS)
        LEAVE(d->set_answer);
    if (limit < d->cap_min || limit > d->cap_max)
        LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    int fd = state_lock(LOCK_EX);
    struct state st;
    state_read(&st);
    if (st.t0_ns < 0)
        st.t0_ns = t0_ns;
    char extra[160];
    snprintf(extra, sizeof extra, "set %.6f %d %u %u %u\n", t_, (int)getpid(), d->index,
             st.caps[d->index], limit);
    st.caps[d->index] = limit;
    state_write(&st, extra);
    free(st.history);
    state_unlock(fd);
    EXIT();
}

EXPORT nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t d, unsigned int *current,
                                         unsigned int *pending)
{
    ENTER();
    DEVICE(d);
    if (!current || !pending)
        LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    if (d->mig_answer != NVML_SUCCESS)
        LEAVE(d->mig_answer);
    *current = *pending = d->mig;
    EXIT();
}

/* The scenario's processes, `child` standing for each child of this process (from /proc). */
static int expand_procs(const struct nvmlDevice_st *d, struct proc *out, int max)
{
    int n = 0;
    for (int i = 0; i < d->nprocs; i++) {
        if (!d->procs[i].child) {
            if (n < max)
                out[n++] = d->procs[i];
            continue;
        }
        DIR *dir = opendir("/proc");
        if (!dir)
            continue;
        struct dirent *e;
        while ((e = readdir(dir)) && n < max) {
            char *end;
            long pid = strtol(e->d_name, &end, 10);
            if (*end || pid <= 0)
                continue;
            char path[64], buf[512];
            snprintf(path, sizeof path, "/proc/%ld/stat", pid);
            FILE *f = fopen(path, "r");
            if (!f)
                continue;
            size_t len = fread(buf, 1, sizeof buf - 1, f);
            fclose(f);
            buf[len] = 0;
            char *rp = strrchr(buf, ')'); /* the command name may hold spaces and parens */
            char state;
            int ppid;
            if (rp && sscanf(rp + 1, " %c %d", &state, &ppid) == 2 && ppid == getpid()) {
                out[n] = d->procs[i];
                out[n].child = 0;
                out[n].pid = (unsigned int)pid;
                n++;
            }
        }
        closedir(dir);
    }
    return n;
}

EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t d, unsigned int *count,
                                                            nvmlProcessInfo_t *infos)
{
    ENTER();
    DEVICE(d);
    if (!count)
        LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    if (d->procs_answer != NVML_SUCCESS)
        LEAVE(d->procs_answer);
    struct proc ps[MAX_PROCS];
    int n = expand_procs(d, ps, MAX_PROCS);
    if ((unsigned int)n > *count || (!infos && n > 0)) {
        *count = (unsigned int)n;
        LEAVE(NVML_ERROR_INSUFFICIENT_SIZE);
    }
    for (int i = 0; i < n; i++) {
        infos[i].pid = ps[i].pid;
        infos[i].usedGpuMemory = ps[i].mem_mib << 20;
        infos[i].gpuInstanceId = NOT_AVAILABLE; /* not a MIG instance */
        infos[i].computeInstanceId = NOT_AVAILABLE;
    }
    *count = (unsigned int)n;
    EXIT();
}

/*
 * One sample per process with a non-zero SM utilisation, stamped now (µs since the origin,
 * plus one so it is never 0). As the driver does (seen on an H200, driver 580.159.04): a NULL
 * buffer asks for the buffer's size, answered NVML_ERROR_INSUFFICIENT_SIZE with the most
 * samples it may hold whatever there is; with a buffer, none newer than `last_seen` is
 * NVML_ERROR_NOT_FOUND.
 */
EXPORT nvmlReturn_t nvmlDeviceGetProcessUtilization(nvmlDevice_t d,
                                                    nvmlProcessUtilizationSample_t *util,
                                                    unsigned int *count,
                                                    unsigned long long last_seen)
{
    ENTER();
    DEVICE(d);
    if (!count)
        LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    if (d->proc_util_answer != NVML_SUCCESS)
        LEAVE(d->proc_util_answer);
    unsigned long long stamp = (unsigned long long)(t_ * 1e6) + 1;
    struct proc all[MAX_PROCS], ps[MAX_PROCS];
    int m = expand_procs(d, all, MAX_PROCS), n = 0;
    for (int i = 0; i < m; i++)
        if (all[i].sm > 0 && stamp > last_seen)
            ps[n++] = all[i];
    if (!util) {
        *count = MAX_PROCS;
        LEAVE(NVML_ERROR_INSUFFICIENT_SIZE);
    }
    if (n == 0) {
        *count = 0;
        LEAVE(NVML_ERROR_NOT_FOUND);
    }
    if (*count < (unsigned int)n) {
        *count = (unsigned int)n;
        LEAVE(NVML_ERROR_INSUFFICIENT_SIZE);
    }
    for (int i = 0; i < n; i++) {
        util[i].pid = ps[i].pid;
        util[i].timeStamp = stamp;
        util[i].smUtil = ps[i].sm;
        util[i].memUtil = 0;
        util[i].encUtil = 0;
        util[i].decUtil = 0;
    }
    *count = (unsigned int)n;
    EXIT();
}

/* ==== MIG: instances' slices and the card's profiles (issue 19, MIG per-slice share) ====
 *
 * Scenario keys of a GPU's section (beside `mig` and `mig_devices`):
 *   mig_slices = "3 2"          compute slices of each MIG device, in mig_devices' order (1)
 *   mig_mem_mib = "40192 20096" memory of each (the card's memory × slices / card slices)
 *   mig_card_slices = 7         the card's slices: its largest GPU-instance profile (7)
 *   mig_attributes = success    what nvmlDeviceGetAttributes_v2 answers for its MIG devices
 *
 * nvmlDeviceGetAttributes_v2 answers for MIG device handles only (as nvml.h says; a GPU
 * handle is NOT_SUPPORTED), nvmlDeviceGetGpuInstanceProfileInfo for a GPU in MIG mode, with
 * the A100/H100 profile table (ids 0..4: 1, 2, 3, 4 and 7 slices; 14 SMs per slice) cut at the
 * card's slices; other ids, and a GPU not in MIG mode, are NOT_SUPPORTED.
 */

typedef struct {
    unsigned int multiprocessorCount;
    unsigned int sharedCopyEngineCount;
    unsigned int sharedDecoderCount;
    unsigned int sharedEncoderCount;
    unsigned int sharedJpegCount;
    unsigned int sharedOfaCount;
    unsigned int gpuInstanceSliceCount;
    unsigned int computeInstanceSliceCount;
    unsigned long long memorySizeMB;
} nvmlDeviceAttributes_t;

typedef struct {
    unsigned int id;
    unsigned int isP2pSupported;
    unsigned int sliceCount;
    unsigned int instanceCount;
    unsigned int multiprocessorCount;
    unsigned int copyEngineCount;
    unsigned int decoderCount;
    unsigned int encoderCount;
    unsigned int jpegCount;
    unsigned int ofaCount;
    unsigned long long memorySizeMB;
} nvmlGpuInstanceProfileInfo_t;

#define MIG_SMS_PER_SLICE 14

static struct {
    unsigned int slices[MAX_MIGS_PER_GPU]; /* 0: 1 */
    unsigned long long mem_mib[MAX_MIGS_PER_GPU]; /* 0: proportional */
    unsigned int card_slices; /* 0: 7 */
    nvmlReturn_t attributes; /* NVML_SUCCESS (0) unless the scenario says */
} mig_cfg[MAX_GPUS];

static int mig_list(char *v, unsigned long long *out, unsigned long long max)
{
    int n = 0;
    for (char *tok = strtok(v, " \t,"); tok; tok = strtok(NULL, " \t,")) {
        unsigned long long x;
        if (n >= MAX_MIGS_PER_GPU || parse_uint(tok, &x) || x == 0 || x > max)
            return -1;
        out[n++] = x;
    }
    return 0;
}

static int mig_key(struct nvmlDevice_st *d, const char *k, char *v)
{
    size_t g = (size_t)(d - devs);
    unsigned long long xs[MAX_MIGS_PER_GPU] = {0}, n;
    if (g >= MAX_GPUS)
        return -1;
    if (!strcmp(k, "mig_slices")) {
        if (mig_list(v, xs, 8))
            return -1;
        for (int i = 0; i < MAX_MIGS_PER_GPU; i++)
            mig_cfg[g].slices[i] = (unsigned int)xs[i];
    } else if (!strcmp(k, "mig_mem_mib")) {
        if (mig_list(v, xs, 1ull << 40))
            return -1;
        for (int i = 0; i < MAX_MIGS_PER_GPU; i++)
            mig_cfg[g].mem_mib[i] = xs[i];
    } else if (!strcmp(k, "mig_card_slices")) {
        if (parse_uint(v, &n) || n == 0 || n > 8)
            return -1;
        mig_cfg[g].card_slices = (unsigned int)n;
    } else if (!strcmp(k, "mig_attributes"))
        return parse_answer(v, &mig_cfg[g].attributes);
    else
        return -2;
    return 0;
}

static unsigned int mig_card_slices(size_t g) { return mig_cfg[g].card_slices ? mig_cfg[g].card_slices : 7; }

EXPORT nvmlReturn_t nvmlDeviceGetAttributes_v2(nvmlDevice_t device, nvmlDeviceAttributes_t *a)
{
    ENTER();
    if (refcount <= 0)
        LEAVE(NVML_ERROR_UNINITIALIZED);
    if (!a)
        LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    struct nvmlDevice_st *parent = mig_parent(device);
    if (!parent) {
        DEVICE(device);
        LEAVE(NVML_ERROR_NOT_SUPPORTED);
    }
    DEVICE(parent);
    size_t g = (size_t)(parent - devs);
    size_t k = (size_t)(device - mig_devs) % MAX_MIGS_PER_GPU;
    if (mig_cfg[g].attributes != NVML_SUCCESS)
        LEAVE(mig_cfg[g].attributes);
    unsigned int slices = mig_cfg[g].slices[k] ? mig_cfg[g].slices[k] : 1;
    memset(a, 0, sizeof *a);
    a->multiprocessorCount = slices * MIG_SMS_PER_SLICE;
    a->gpuInstanceSliceCount = slices;
    a->computeInstanceSliceCount = slices;
    a->memorySizeMB = mig_cfg[g].mem_mib[k]
                          ? mig_cfg[g].mem_mib[k]
                          : parent->mem_total_mib * slices / mig_card_slices(g);
    EXIT();
}

EXPORT nvmlReturn_t nvmlDeviceGetAttributes(nvmlDevice_t device, nvmlDeviceAttributes_t *a)
{
    return nvmlDeviceGetAttributes_v2(device, a);
}

EXPORT nvmlReturn_t nvmlDeviceGetGpuInstanceProfileInfo(nvmlDevice_t device, unsigned int profile,
                                                        nvmlGpuInstanceProfileInfo_t *info)
{
    static const unsigned int table[] = {1, 2, 3, 4, 7};
    ENTER();
    if (refcount <= 0)
        LEAVE(NVML_ERROR_UNINITIALIZED);
    if (!info)
        LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    DEVICE(device);
    if (device->mig_answer != NVML_SUCCESS)
        LEAVE(device->mig_answer);
    size_t g = (size_t)(device - devs);
    if (!device->mig || profile >= sizeof table / sizeof table[0] ||
        table[profile] > mig_card_slices(g))
        LEAVE(NVML_ERROR_NOT_SUPPORTED);
    unsigned int slices = table[profile];
    memset(info, 0, sizeof *info);
    info->id = profile;
    info->sliceCount = slices;
    info->instanceCount = mig_card_slices(g) / slices;
    info->multiprocessorCount = slices * MIG_SMS_PER_SLICE;
    info->memorySizeMB = device->mem_total_mib * slices / mig_card_slices(g);
    EXIT();
}
/* ==== end of the MIG block ==== */

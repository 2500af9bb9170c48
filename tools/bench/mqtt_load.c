/* Load driver for the daemon benchmark (tools/bench_daemon.sh): libmosquitto, no Python in the path.
 *
 *   mqtt_load loop   PORT N QOS            raw broker loopback: publish N 40-byte messages, count them back
 *   mqtt_load daemon PORT N QOS RATE GW SENSOR
 *                                          publish N readings {"t":..,"v":..} (RATE/s, 0 = flat out) and
 *                                          receive the forecasts; reports throughput and latency
 *
 * PORT may be unix:PATH: the broker's Unix socket (libmosquitto's port 0) instead of 127.0.0.1:PORT.
 * Output: one JSON object on stdout.
 */
#define _GNU_SOURCE
#include <mosquitto.h>
#include <errno.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TICK_NS 500000ull  /* the paced driver's shortest sleep (see the daemon loop) */

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static volatile long received = 0;
static volatile uint64_t last_recv = 0;
static uint64_t *sent_at;      /* per reading index */
static uint64_t *latency;      /* per forecast */
static long n_total;
static int64_t t0_step = 1700000000 / 60;  /* readings on the 60 s grid */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static volatile int subscribed = 0;

static void on_subscribe(struct mosquitto *m, void *u, int mid, int n, const int *q) { (void)m; (void)u; (void)mid; (void)n; (void)q; subscribed = 1; }

static void on_loop_message(struct mosquitto *m, void *u, const struct mosquitto_message *msg) {
    (void)m; (void)u; (void)msg;
    received++;
    last_recv = now_ns();
}

static void on_forecast(struct mosquitto *m, void *u, const struct mosquitto_message *msg) {
    (void)m; (void)u;
    uint64_t t = now_ns();
    /* The forecast's "t" is the window's last step: the reading that completed it. */
    const char *p = memmem(msg->payload, (size_t)msg->payloadlen, "\"t\":", 4);
    if (!p) return;
    double ts = strtod(p + 4, NULL);
    long idx = (long)((int64_t)(ts / 60.0 + 0.5) - t0_step);
    pthread_mutex_lock(&mu);
    if (idx >= 0 && idx < n_total && sent_at[idx]) latency[received] = t - sent_at[idx];
    received++;
    last_recv = t;
    pthread_mutex_unlock(&mu);
}

static int cmp(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static const char *host = "127.0.0.1";  /* or the broker's Unix socket, with port 0 */

static struct mosquitto *client(const char *id, int port, void (*cb)(struct mosquitto *, void *, const struct mosquitto_message *)) {
    struct mosquitto *m = mosquitto_new(id, true, NULL);
    mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_max_inflight_messages_set(m, 1000);
    if (port) mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
    if (cb) mosquitto_message_callback_set(m, cb);
    mosquitto_subscribe_callback_set(m, on_subscribe);
    if (mosquitto_connect(m, host, port, 60) != MOSQ_ERR_SUCCESS) { fprintf(stderr, "connect to %s:%d failed\n", host, port); exit(1); }
    mosquitto_loop_start(m);
    return m;
}

int main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage: see the comment at the top of mqtt_load.c\n"); return 2; }
    mosquitto_lib_init();
    int port = atoi(argv[2]);
    if (!strncmp(argv[2], "unix:", 5)) { host = argv[2] + 5; port = 0; }
    long n = atol(argv[3]);
    int qos = atoi(argv[4]);
    n_total = n;
    if (!strcmp(argv[1], "loop")) {
        struct mosquitto *sub = client("bench-loop-sub", port, on_loop_message);
        mosquitto_subscribe(sub, NULL, "bench/loop", qos);
        while (!subscribed) usleep(1000);
        struct mosquitto *pub = client("bench-loop-pub", port, NULL);
        char payload[40];
        memset(payload, 'x', sizeof payload);
        uint64_t start = now_ns();
        for (long i = 0; i < n; i++) {
            while (mosquitto_publish(pub, NULL, "bench/loop", sizeof payload, payload, qos, false) == MOSQ_ERR_OVERSIZE_PACKET) usleep(10);
        }
        uint64_t deadline = now_ns() + 30000000000ull;
        while (received < n && now_ns() < deadline) usleep(1000);
        double secs = (double)(last_recv - start) / 1e9;
        printf("{\"mode\":\"loop\",\"qos\":%d,\"sent\":%ld,\"received\":%ld,\"seconds\":%.3f,\"msg_per_s\":%.0f}\n", qos, n, received, secs, received / secs);
        return 0;
    }
    if (argc < 8) { fprintf(stderr, "daemon mode needs RATE GW SENSOR\n"); return 2; }
    double rate = atof(argv[5]);
    const char *gw = argv[6], *sensor = argv[7];
    long window = argc > 8 ? atol(argv[8]) : 24;
    long expected = n - window + 1;
    prctl(PR_SET_TIMERSLACK, 1000UL);  /* wake within about 1 us of the due time, not the default 50 us */
    sent_at = calloc((size_t)n, sizeof *sent_at);
    latency = calloc((size_t)n, sizeof *latency);
    char topic[256], ftopic[256];
    snprintf(topic, sizeof topic, "aiot/%s/readings/%s", gw, sensor);
    snprintf(ftopic, sizeof ftopic, "aiot/%s/forecasts/%s", gw, sensor);
    struct mosquitto *sub = client("bench-forecasts", port, on_forecast);
    mosquitto_subscribe(sub, NULL, ftopic, qos);
    while (!subscribed) usleep(1000);
    struct mosquitto *pub = client("bench-readings", port, NULL);
    char payload[96];
    uint64_t start = now_ns(), last_wake = 0;
    for (long i = 0; i < n; i++) {
        if (rate > 0) {
            /* Sleep to the reading's due time (absolute: a late wake-up is caught up, not carried),
             * at most once per TICK_NS: above 1/TICK_NS readings per second, the readings due by a
             * wake-up go out together (bursts of 5 at 10,000/s). A driver that spins between
             * readings, as this one did, holds one of the two cores the broker and aiotd need (at
             * 10,000/s every gap is 100 us, so it spun all the time); one that sleeps per reading
             * takes 10,000 wake-ups a second from them. docs/performance.md (stop 28) has all three. */
            uint64_t due = start + (uint64_t)((double)i * 1e9 / rate);
            if (due > now_ns()) {
                uint64_t until = due > last_wake + TICK_NS ? due : last_wake + TICK_NS;
                struct timespec ts = {.tv_sec = (time_t)(until / 1000000000ull), .tv_nsec = (long)(until % 1000000000ull)};
                while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {}
                last_wake = now_ns();
            }
        }
        double v = 0.5 + 0.4 * ((i * 7919) % 97) / 97.0;
        int len = snprintf(payload, sizeof payload, "{\"t\":%lld,\"v\":%.4f}", (long long)((t0_step + i) * 60), v);
        sent_at[i] = now_ns();
        mosquitto_publish(pub, NULL, topic, len, payload, qos, false);
    }
    uint64_t sent_done = now_ns();
    uint64_t deadline = now_ns() + 60000000000ull;
    while (received < expected && now_ns() < deadline) usleep(1000);
    usleep(200000);
    pthread_mutex_lock(&mu);
    long got = received, lat_n = 0;
    for (long i = 0; i < got; i++) if (latency[i]) latency[lat_n++] = latency[i];
    qsort(latency, (size_t)lat_n, sizeof *latency, cmp);
    double p50 = lat_n ? latency[(lat_n - 1) / 2] / 1e3 : -1, p99 = lat_n ? latency[(long)((lat_n - 1) * 0.99)] / 1e3 : -1;
    double secs = (double)(last_recv - start) / 1e9;
    printf("{\"mode\":\"daemon\",\"qos\":%d,\"rate\":%.0f,\"readings\":%ld,\"forecasts\":%ld,\"expected_forecasts\":%ld,"
           "\"publish_seconds\":%.3f,\"seconds\":%.3f,\"readings_per_s\":%.0f,\"p50_us\":%.1f,\"p99_us\":%.1f}\n",
           qos, rate, n, got, expected, (double)(sent_done - start) / 1e9, secs, n / secs, p50, p99);
    pthread_mutex_unlock(&mu);
    return got == expected ? 0 : 1;
}

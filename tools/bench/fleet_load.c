/* Load driver for the fleet benchmark (tools/bench_fleet.sh): N sensors on one template.
 *
 *   fleet_load PORT GW N STEPS FEATURES WINDOW
 *
 * Publishes STEPS readings to each of N sensors (aiot/GW/readings/sNNNNN, step-major, QoS 1,
 * {"t":..,"values":{F1:..,F2:..}} for FEATURES = "F1,F2"), waits for every PUBACK, and counts the
 * forecasts back (N * (STEPS - WINDOW + 1) expected). Output: one JSON object on stdout.
 */
#define _GNU_SOURCE
#include <mosquitto.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static volatile long acked = 0, forecasts = 0, subscribed = 0;
static volatile uint64_t last_forecast = 0;
static void on_publish(struct mosquitto *m, void *u, int mid) { (void)m; (void)u; (void)mid; __sync_fetch_and_add(&acked, 1); }
static void on_message(struct mosquitto *m, void *u, const struct mosquitto_message *msg) {
    (void)m; (void)u; (void)msg;
    __sync_fetch_and_add(&forecasts, 1);
    last_forecast = now_ns();
}
static void on_subscribe(struct mosquitto *m, void *u, int mid, int n, const int *q) { (void)m; (void)u; (void)mid; (void)n; (void)q; subscribed = 1; }

int main(int argc, char **argv) {
    if (argc < 7) { fprintf(stderr, "usage: fleet_load PORT GW N STEPS FEATURES WINDOW\n"); return 2; }
    int port = atoi(argv[1]);
    const char *gw = argv[2];
    long n = atol(argv[3]), steps = atol(argv[4]), window = atol(argv[6]);
    char features[8][64]; int nf = 0;
    for (char *f = strtok(argv[5], ","); f && nf < 8; f = strtok(NULL, ",")) snprintf(features[nf++], 64, "%s", f);
    mosquitto_lib_init();
    struct mosquitto *sub = mosquitto_new("fleet-sub", true, NULL), *pub = mosquitto_new("fleet-pub", true, NULL);
    mosquitto_message_callback_set(sub, on_message);
    mosquitto_subscribe_callback_set(sub, on_subscribe);
    mosquitto_publish_callback_set(pub, on_publish);
    mosquitto_max_inflight_messages_set(pub, 1000);
    if (mosquitto_connect(sub, "127.0.0.1", port, 60) || mosquitto_connect(pub, "127.0.0.1", port, 60)) { fprintf(stderr, "connect failed\n"); return 1; }
    mosquitto_loop_start(sub);
    mosquitto_loop_start(pub);
    char filter[256]; snprintf(filter, sizeof filter, "aiot/%s/forecasts/+", gw);
    mosquitto_subscribe(sub, NULL, filter, 1);
    while (!subscribed) usleep(1000);
    uint64_t t0 = now_ns(), first_pass = 0;
    char topic[256], payload[512];
    long sent = 0;
    for (long k = 0; k < steps; k++) {
        for (long s = 0; s < n; s++) {
            snprintf(topic, sizeof topic, "aiot/%s/readings/s%05ld", gw, s);
            int o = snprintf(payload, sizeof payload, "{\"t\":%ld,\"values\":{", (1700000000L / 60 + k) * 60);
            for (int f = 0; f < nf; f++) o += snprintf(payload + o, sizeof payload - o, "%s\"%s\":%.3f", f ? "," : "", features[f], (double)((s * 31 + k * 7 + f) % 100) / 10.0);
            snprintf(payload + o, sizeof payload - o, "}}");
            while (mosquitto_publish(pub, NULL, topic, (int)strlen(payload), payload, 1, false) == MOSQ_ERR_NOMEM) usleep(100);
            sent++;
            while (sent - acked > 2000) usleep(100);
        }
        if (k == 0) { while (acked < sent) usleep(100); first_pass = now_ns(); }
    }
    while (acked < sent) usleep(1000);
    uint64_t published = now_ns();
    long expected = steps >= window ? n * (steps - window + 1) : 0;
    /* Forecasts: until all arrived, or 5 s without one. */
    last_forecast = now_ns();
    while (forecasts < expected && now_ns() - last_forecast < 5000000000ull) usleep(10000);
    uint64_t done = now_ns();
    printf("{\"sensors\":%ld,\"readings\":%ld,\"first_readings_acked_s\":%.3f,\"published_s\":%.3f,\"forecasts\":%ld,\"expected_forecasts\":%ld,\"all_forecasts_s\":%.3f}\n",
           n, sent, (first_pass - t0) / 1e9, (published - t0) / 1e9, (long)forecasts, expected, (done - t0) / 1e9);
    return forecasts == expected ? 0 : 1;
}

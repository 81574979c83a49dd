/* SPDX-License-Identifier: Apache-2.0 OR MIT */
/* Runs one gst-launch style pipeline and measures it at the element named "meter": frames that
 * reached it, and the wall time and CPU time (user + sys of the whole process, getrusage) from
 * the first frame to the last. Measuring between frames, not over the process's life, leaves out
 * start-up (plugin loading, negotiation, the wait for the other process) that would otherwise
 * weigh on a few hundred 4K frames as much as the transport itself.
 *
 * Usage: px_gst_meter TIMEOUT_S PIPELINE...
 * Prints one line "frames wall_s cpu_s" (frames counted, then the wall and CPU seconds of the
 * frames - 1 intervals between the first and the last). Ends at EOS; an error after at least one
 * frame also ends the run (shmsrc ends with "Control socket has closed" when shmsink leaves:
 * it has no EOS), an error before any frame fails. After TIMEOUT_S seconds it says so on stderr,
 * with the frames that reached the meter by then (all of them: the hang is at the end), and
 * exits 2. Built by run.sh with cc and pkg-config; not part of the tests. */
#include <gst/gst.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

typedef struct {
    guint64 frames;
    double wall_first, wall_last; /* seconds, CLOCK_MONOTONIC */
    double cpu_first, cpu_last;   /* seconds of user + sys */
} Meter;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

/* Called in the streaming thread before the meter element handles each buffer. */
static GstPadProbeReturn on_buffer(GstPad *pad, GstPadProbeInfo *info, gpointer data) {
    (void)pad, (void)info;
    Meter *m = data;
    const double wall = now_s(), cpu = cpu_s();
    if (m->frames++ == 0) {
        m->wall_first = wall;
        m->cpu_first = cpu;
    }
    m->wall_last = wall;
    m->cpu_last = cpu;
    return GST_PAD_PROBE_OK;
}

typedef struct {
    GMainLoop *loop;
    Meter *meter;
    int status;
} Run;

static gboolean on_timeout(gpointer data) {
    Run *run = data;
    /* frames is written by the streaming thread: a plain read is good enough for a report. */
    fprintf(stderr, "px_gst_meter: TIMEOUT after %" G_GUINT64_FORMAT " frames\n",
            run->meter->frames);
    g_main_loop_quit(run->loop);
    return G_SOURCE_REMOVE;
}

static gboolean on_message(GstBus *bus, GstMessage *msg, gpointer data) {
    (void)bus;
    Run *run = data;
    if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_EOS) {
        run->status = 0;
        g_main_loop_quit(run->loop);
    } else if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
        GError *err = NULL;
        gst_message_parse_error(msg, &err, NULL);
        /* After frames went through this is how shmsrc ends; before any, a real failure. */
        run->status = run->meter->frames > 0 ? 0 : 1;
        if (run->status != 0)
            fprintf(stderr, "px_gst_meter: error from %s: %s\n", GST_OBJECT_NAME(msg->src),
                    err->message);
        g_error_free(err);
        g_main_loop_quit(run->loop);
    }
    return G_SOURCE_CONTINUE;
}

int main(int argc, char **argv) {
    gst_init(&argc, &argv);
    if (argc < 3) {
        fprintf(stderr, "usage: px_gst_meter TIMEOUT_S PIPELINE...\n");
        return 2;
    }
    const guint timeout_s = (guint)strtoul(argv[1], NULL, 10);
    GError *err = NULL;
    GstElement *pipeline = gst_parse_launchv((const gchar **)&argv[2], &err);
    if (pipeline == NULL || err != NULL) {
        fprintf(stderr, "px_gst_meter: bad pipeline: %s\n", err ? err->message : "?");
        return 2;
    }
    GstElement *meter_el = gst_bin_get_by_name(GST_BIN(pipeline), "meter");
    if (meter_el == NULL) {
        fprintf(stderr, "px_gst_meter: no element named \"meter\" in the pipeline\n");
        return 2;
    }
    Meter meter = {0};
    GstPad *pad = gst_element_get_static_pad(meter_el, "sink");
    gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, on_buffer, &meter, NULL);
    gst_object_unref(pad);
    gst_object_unref(meter_el);

    Run run = {g_main_loop_new(NULL, FALSE), &meter, 2};
    GstBus *bus = gst_element_get_bus(pipeline);
    gst_bus_add_watch(bus, on_message, &run);
    gst_object_unref(bus);
    g_timeout_add_seconds(timeout_s, on_timeout, &run);
    if (gst_element_set_state(pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
        fprintf(stderr, "px_gst_meter: the pipeline did not start\n");
        return 1;
    }
    g_main_loop_run(run.loop);
    gst_element_set_state(pipeline, GST_STATE_NULL);
    gst_object_unref(pipeline);
    if (run.status != 0)
        return run.status;
    if (meter.frames < 2) {
        fprintf(stderr, "px_gst_meter: %" G_GUINT64_FORMAT " frames: nothing to measure\n",
                meter.frames);
        return 1;
    }
    printf("%" G_GUINT64_FORMAT " %.6f %.6f\n", meter.frames, meter.wall_last - meter.wall_first,
           meter.cpu_last - meter.cpu_first);
    return 0;
}

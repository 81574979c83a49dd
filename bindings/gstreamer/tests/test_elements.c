/* SPDX-License-Identifier: Apache-2.0 OR MIT */
/* Unit tests of parallaxsink and parallaxsrc in one process (GstHarness, gst-check): zero-copy
 * from the upstream element's pool to the src's output (data pointers compared through a marker
 * byte), the copy fallback, metadata and caps both ways, slots going home, EOS and a lost
 * publisher, and bad settings. Two-process runs are in gst_launch_tests.sh. */
#include <glib/gstdio.h>
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/video/video.h>
#include <parallax/parallax.h>
#include <stdlib.h>
#include <string.h>

#define SECOND_NS 1000000000LL
#define RGB_CAPS "video/x-raw,format=RGB,width=64,height=48,framerate=30/1"
#define RGB_SIZE (64 * 48 * 3)

static gchar *runtime_dir;

/* ---- helpers -------------------------------------------------------------------------------- */

/* A field of the stats property of the element named `factory` inside the harness. */
static guint64 stat_u64(GstHarness *h, const char *factory, const char *field) {
    GstElement *element = gst_harness_find_element(h, factory);
    fail_unless(element != NULL);
    GstStructure *s = NULL;
    g_object_get(element, "stats", &s, NULL);
    gst_object_unref(element);
    fail_unless(s != NULL);
    guint64 v = G_MAXUINT64;
    fail_unless(gst_structure_get_uint64(s, field, &v), "no stats field %s", field);
    gst_structure_free(s);
    return v;
}

/* The GstBufferPool the element behind the harness proposes for `caps` (or NULL). */
static GstBufferPool *proposed_pool(GstHarness *h, const char *caps_str) {
    GstCaps *caps = gst_caps_from_string(caps_str);
    GstQuery *q = gst_query_new_allocation(caps, TRUE);
    gst_caps_unref(caps);
    GstBufferPool *pool = NULL;
    if (gst_pad_peer_query(h->srcpad, q) && gst_query_get_n_allocation_pools(q) > 0)
        gst_query_parse_nth_allocation_pool(q, 0, &pool, NULL, NULL, NULL);
    gst_query_unref(q);
    return pool;
}

static void fill(GstBuffer *buf, guint8 seed) {
    GstMapInfo map;
    fail_unless(gst_buffer_map(buf, &map, GST_MAP_WRITE));
    for (gsize i = 0; i < map.size; i++)
        map.data[i] = (guint8)(seed + i * 7);
    gst_buffer_unmap(buf, &map);
}

static void check_bytes(GstBuffer *buf, guint8 seed, gsize size) {
    GstMapInfo map;
    fail_unless(gst_buffer_map(buf, &map, GST_MAP_READ));
    fail_unless_equals_uint64(map.size, size);
    for (gsize i = 0; i < map.size; i++)
        if (map.data[i] != (guint8)(seed + i * 7))
            fail("byte %" G_GSIZE_FORMAT " differs", i);
    gst_buffer_unmap(buf, &map);
}

/* The data pointer of a mapping, kept after unmapping (the memory stays alive as long as the
 * caller holds the buffer). */
static guint8 *data_of(GstBuffer *buf) {
    GstMapInfo map;
    fail_unless(gst_buffer_map(buf, &map, GST_MAP_READ));
    guint8 *p = map.data;
    gst_buffer_unmap(buf, &map);
    return p;
}

static void set_times(GstBuffer *buf) {
    GST_BUFFER_PTS(buf) = 40 * GST_MSECOND;
    GST_BUFFER_DTS(buf) = 30 * GST_MSECOND;
    GST_BUFFER_DURATION(buf) = 33 * GST_MSECOND;
    GST_BUFFER_OFFSET(buf) = 7;
    GST_BUFFER_OFFSET_END(buf) = 8;
    GST_BUFFER_FLAG_SET(buf, GST_BUFFER_FLAG_DELTA_UNIT | GST_BUFFER_FLAG_DISCONT);
}

static void check_times(GstBuffer *buf) {
    fail_unless_equals_uint64(GST_BUFFER_PTS(buf), 40 * GST_MSECOND);
    fail_unless_equals_uint64(GST_BUFFER_DTS(buf), 30 * GST_MSECOND);
    fail_unless_equals_uint64(GST_BUFFER_DURATION(buf), 33 * GST_MSECOND);
    fail_unless_equals_uint64(GST_BUFFER_OFFSET(buf), 7);
    fail_unless_equals_uint64(GST_BUFFER_OFFSET_END(buf), 8);
    fail_unless(GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_DELTA_UNIT));
    fail_unless(GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_DISCONT));
}

/* Waits up to 5 s for an event of `type` on the harness's sink side. */
static gboolean got_event(GstHarness *h, GstEventType type) {
    for (int i = 0; i < 500; i++) {
        GstEvent *e;
        while ((e = gst_harness_try_pull_event(h)) != NULL) {
            const gboolean match = GST_EVENT_TYPE(e) == type;
            gst_event_unref(e);
            if (match)
                return TRUE;
        }
        g_usleep(10000);
    }
    return FALSE;
}

/* Pulls every event queued at the harness now: how many were caps. */
static guint caps_events_queued(GstHarness *h) {
    guint n = 0;
    GstEvent *e;
    while ((e = gst_harness_try_pull_event(h)) != NULL) {
        n += GST_EVENT_TYPE(e) == GST_EVENT_CAPS;
        gst_event_unref(e);
    }
    return n;
}

/* Waits up to 5 s for an error message from the element. */
static gboolean got_error(GstBus *bus) {
    GstMessage *m = gst_bus_timed_pop_filtered(bus, 5 * GST_SECOND, GST_MESSAGE_ERROR);
    if (m == NULL)
        return FALSE;
    gst_message_unref(m);
    return TRUE;
}

/* A sink harness on stream `name` that waits for one subscriber, fed RGB_CAPS. */
/* The width in the current caps of the src behind the harness. */
static gint caps_width(GstHarness *src) {
    GstCaps *caps = gst_pad_get_current_caps(src->sinkpad);
    fail_unless(caps != NULL, "the src has no caps");
    gint width = 0;
    gst_structure_get_int(gst_caps_get_structure(caps, 0), "width", &width);
    gst_caps_unref(caps);
    return width;
}

static GstHarness *sink_harness(const char *name, const char *extra) {
    gchar *desc = g_strdup_printf("parallaxsink stream=%s wait-for-subscribers=1 %s", name,
                                  extra ? extra : "");
    GstHarness *h = gst_harness_new_parse(desc);
    g_free(desc);
    gst_harness_set_src_caps_str(h, RGB_CAPS);
    return h;
}

static GstHarness *src_harness(const char *name, const char *extra) {
    gchar *desc = g_strdup_printf("parallaxsrc stream=%s timeout=5000000000 %s", name,
                                  extra ? extra : "");
    GstHarness *h = gst_harness_new_parse(desc);
    g_free(desc);
    gst_harness_play(h);
    return h;
}

/* ---- sink -> src in one process ------------------------------------------------------------- */

/* Upstream fills a buffer of the sink's proposed pool; the src's output maps the same bytes
 * (another mapping of the same pages): a byte written afterwards through the upstream pointer
 * appears through the src's pointer. Nothing was copied on the way; the stats agree. */
GST_START_TEST(test_zero_copy_from_upstream_pool_to_src_output) {
    GstHarness *sink = sink_harness("zc", NULL);
    GstHarness *src = src_harness("zc", NULL);
    GstBufferPool *pool = proposed_pool(sink, RGB_CAPS);
    fail_unless(pool != NULL, "parallaxsink proposed no pool");
    fail_unless(gst_buffer_pool_set_active(pool, TRUE));
    GstBuffer *in = NULL;
    fail_unless_equals_int(gst_buffer_pool_acquire_buffer(pool, &in, NULL), GST_FLOW_OK);
    fail_unless(gst_memory_is_type(gst_buffer_peek_memory(in, 0), "ParallaxMemory"));
    fill(in, 3);
    set_times(in);
    guint8 *written = data_of(in);
    fail_unless_equals_int(gst_harness_push(sink, gst_buffer_ref(in)), GST_FLOW_OK);

    GstBuffer *out = gst_harness_pull(src);
    fail_unless(out != NULL);
    check_bytes(out, 3, RGB_SIZE);
    check_times(out);
    GstMemory *mem = gst_buffer_peek_memory(out, 0);
    fail_unless_equals_int(gst_buffer_n_memory(out), 1);
    fail_unless(gst_memory_is_type(mem, "ParallaxMemory"));
    fail_unless(GST_MEMORY_IS_READONLY(mem), "a received frame must be read-only");
    guint8 *read = data_of(out);
    fail_unless(read != written); /* two mappings of one slot */
    written[0] = 0xA5;
    written[RGB_SIZE - 1] = 0x5A;
    fail_unless_equals_int(read[0], 0xA5);
    fail_unless_equals_int(read[RGB_SIZE - 1], 0x5A);

    fail_unless_equals_uint64(stat_u64(sink, "parallaxsink", "zero-copy"), 1);
    fail_unless_equals_uint64(stat_u64(sink, "parallaxsink", "copied"), 0);
    fail_unless_equals_uint64(stat_u64(src, "parallaxsrc", "received"), 1);
    /* The caps crossed as the description. */
    GstCaps *caps = gst_pad_get_current_caps(src->sinkpad);
    GstCaps *want = gst_caps_from_string(RGB_CAPS);
    fail_unless(gst_caps_is_equal(caps, want));
    gst_caps_unref(caps);
    gst_caps_unref(want);

    /* EOS at the sink reaches the src as EOS (the end marker), not as a lost publisher. */
    fail_unless(gst_harness_push_event(sink, gst_event_new_eos()));
    fail_unless(got_event(src, GST_EVENT_EOS));
    gst_buffer_unref(out);
    gst_buffer_unref(in);
    gst_buffer_pool_set_active(pool, FALSE);
    gst_object_unref(pool);
    gst_harness_teardown(src);
    gst_harness_teardown(sink);
}
GST_END_TEST;

/* The sink's pool keeps its GstBuffers, not their slots: a pool keeping as many buffers ready
 * as there are slots is accepted and still hands out every slot, and a buffer released comes
 * back (marked) with a fresh slot, so no frame allocates a GstBuffer. */
GST_START_TEST(test_sink_pool_reuses_buffers_not_slots) {
    static GQuark mark;
    mark = g_quark_from_static_string("px-test-mark");
    GstHarness *sink = sink_harness("sinkpool", "slots=3");
    GstHarness *src = src_harness("sinkpool", NULL); /* the sink's caps make its pool */
    GstBufferPool *pool = proposed_pool(sink, RGB_CAPS);
    fail_unless(pool != NULL, "parallaxsink proposed no pool");
    GstStructure *config = gst_buffer_pool_get_config(pool);
    GstCaps *caps = gst_caps_from_string(RGB_CAPS);
    gst_buffer_pool_config_set_params(config, caps, RGB_SIZE, 3, 0);
    gst_caps_unref(caps);
    fail_unless(gst_buffer_pool_set_config(pool, config), "3 ready buffers over 3 slots refused");
    fail_unless(gst_buffer_pool_set_active(pool, TRUE));
    GstBuffer *held[3];
    for (int i = 0; i < 3; i++) /* the 3 ready buffers held no slot: all 3 slots are free */
        fail_unless_equals_int(gst_buffer_pool_acquire_buffer(pool, &held[i], NULL), GST_FLOW_OK);
    fail_unless(data_of(held[0]) != data_of(held[1]) && data_of(held[1]) != data_of(held[2]));
    gst_mini_object_set_qdata(GST_MINI_OBJECT_CAST(held[0]), mark, GINT_TO_POINTER(1), NULL);
    for (int i = 0; i < 3; i++)
        gst_buffer_unref(held[i]);
    gboolean seen = FALSE;
    for (int i = 0; i < 6 && !seen; i++) {
        GstBuffer *buf = NULL;
        fail_unless_equals_int(gst_buffer_pool_acquire_buffer(pool, &buf, NULL), GST_FLOW_OK);
        fail_unless_equals_uint64(gst_buffer_get_size(buf), RGB_SIZE);
        fail_unless(gst_memory_is_type(gst_buffer_peek_memory(buf, 0), "ParallaxMemory"));
        seen = gst_mini_object_get_qdata(GST_MINI_OBJECT_CAST(buf), mark) != NULL;
        gst_buffer_unref(buf);
    }
    fail_unless(seen, "a released buffer never came back");
    gst_buffer_pool_set_active(pool, FALSE);
    gst_object_unref(pool);
    gst_harness_teardown(src);
    gst_harness_teardown(sink);
}
GST_END_TEST;

/* A caps change at the sink reaches the src (the sink numbers the new description). */
GST_START_TEST(test_caps_change_crosses_from_sink_to_src) {
    GstHarness *sink = sink_harness("recaps", NULL);
    GstHarness *src = src_harness("recaps", NULL);
    GstBuffer *in = gst_buffer_new_allocate(NULL, RGB_SIZE, NULL);
    fail_unless_equals_int(gst_harness_push(sink, gst_buffer_ref(in)), GST_FLOW_OK);
    gst_buffer_unref(gst_harness_pull(src));
    gst_harness_set_src_caps_str(sink, "video/x-raw,format=RGB,width=32,height=96,"
                                       "framerate=30/1");
    fail_unless_equals_int(gst_harness_push(sink, in), GST_FLOW_OK);
    gst_buffer_unref(gst_harness_pull(src));
    fail_unless_equals_int(caps_width(src), 32);
    gst_harness_teardown(src);
    gst_harness_teardown(sink);
}
GST_END_TEST;

/* A buffer upstream allocated itself is copied once into a slot: the src sees the bytes as they
 * were when pushed (a later write to the original does not show), and the sink counts it. */
GST_START_TEST(test_foreign_buffer_copied_once) {
    GstHarness *sink = sink_harness("copy", NULL);
    GstHarness *src = src_harness("copy", NULL);
    GstBuffer *in = gst_buffer_new_allocate(NULL, RGB_SIZE, NULL);
    fill(in, 9);
    set_times(in);
    guint8 *written = data_of(in);
    fail_unless_equals_int(gst_harness_push(sink, gst_buffer_ref(in)), GST_FLOW_OK);
    GstBuffer *out = gst_harness_pull(src);
    check_bytes(out, 9, RGB_SIZE);
    check_times(out);
    const guint8 first = data_of(out)[0];
    written[0] = (guint8)(first + 1);
    fail_unless_equals_int(data_of(out)[0], first);
    fail_unless_equals_uint64(stat_u64(sink, "parallaxsink", "copied"), 1);
    fail_unless_equals_uint64(stat_u64(sink, "parallaxsink", "zero-copy"), 0);
    gst_buffer_unref(out);
    gst_buffer_unref(in);
    gst_harness_teardown(src);
    gst_harness_teardown(sink);
}
GST_END_TEST;

/* ---- src against a publisher of the C API --------------------------------------------------- */

typedef struct {
    px_publisher_t *pub;
    px_pool_t *pool;
} Publisher;

static Publisher publisher_new(const char *name) {
    Publisher p = {0};
    px_segment_t *seg = NULL;
    fail_unless_equals_int(px_segment_shm_new("test", 4 * 4096, &seg), PX_OK);
    fail_unless_equals_int(px_pool_new(seg, 4096, &p.pool), PX_OK);
    px_segment_release(seg);
    fail_unless_equals_int(px_publisher_new(name, NULL, &p.pub), PX_OK);
    return p;
}

static void publisher_wait_for(Publisher *p, size_t n) {
    for (int i = 0; i < 250 && px_publisher_subscriber_count(p->pub) < n; i++)
        px_publisher_poll(p->pub, 20 * 1000 * 1000);
    fail_unless(px_publisher_subscriber_count(p->pub) >= n, "the src did not subscribe");
}

/* Publishes `len` bytes of value `value`; returns the slot's writable pointer (valid while
 * *keep lives). */
static guint8 *publish(Publisher *p, size_t len, guint8 value, px_buffer_t **keep) {
    px_slot_t *slot = NULL;
    fail_unless_equals_int(px_pool_loan(p->pool, &slot), PX_OK);
    memset(px_slot_data(slot), value, len);
    px_metadata_t meta;
    px_metadata_init(&meta);
    meta.pts_ns = 5 * SECOND_NS;
    px_buffer_t *buf = NULL;
    fail_unless_equals_int(px_slot_into_buffer(slot, len, &meta, &buf), PX_OK);
    fail_unless_equals_int(px_publisher_publish(p->pub, buf), PX_OK);
    *keep = buf;
    return px_buffer_mut_ptr(buf);
}

/* Publishes one frame and pulls it from the src: the width of the src's caps after it. */
static gint width_after_frame(Publisher *p, GstHarness *src) {
    px_buffer_t *keep = NULL;
    publish(p, 16, 1, &keep);
    px_buffer_release(keep);
    gst_buffer_unref(gst_harness_pull(src));
    return caps_width(src);
}

static void publisher_free(Publisher *p) {
    px_publisher_release(p->pub);
    px_pool_release(p->pool);
}

/* Caps follow the description, also when it changes mid-stream; times without a value stay
 * GST_CLOCK_TIME_NONE; when the src drops a frame its slot goes home. */
GST_START_TEST(test_src_caps_follow_description_and_slots_go_home) {
    Publisher p = publisher_new("desc");
    fail_unless_equals_int(px_publisher_set_description(p.pub, "video/x-raw,format=GRAY8,"
                                                               "width=8,height=8,framerate=1/1"),
                           PX_OK);
    GstHarness *src = src_harness("desc", NULL);
    publisher_wait_for(&p, 1);
    px_buffer_t *keep = NULL;
    guint8 *slot = publish(&p, 64, 1, &keep);
    GstBuffer *out = gst_harness_pull(src);
    fail_unless_equals_uint64(GST_BUFFER_PTS(out), 5 * GST_SECOND);
    fail_unless(!GST_BUFFER_DTS_IS_VALID(out) && !GST_BUFFER_DURATION_IS_VALID(out));
    slot[0] = 77; /* the src's memory is the slot */
    fail_unless_equals_int(data_of(out)[0], 77);
    GstCaps *caps = gst_pad_get_current_caps(src->sinkpad);
    fail_unless_equals_string(gst_structure_get_string(gst_caps_get_structure(caps, 0),
                                                       "format"),
                              "GRAY8");
    gst_caps_unref(caps);
    px_buffer_release(keep);
    fail_unless(px_pool_available(p.pool) < px_pool_capacity(p.pool));
    gst_buffer_unref(out);
    fail_unless_equals_uint64(px_pool_available(p.pool), px_pool_capacity(p.pool));

    fail_unless_equals_int(px_publisher_set_description(p.pub, "video/x-raw,format=GRAY8,"
                                                               "width=4,height=4,framerate=1/1"),
                           PX_OK);
    publish(&p, 16, 2, &keep);
    px_buffer_release(keep);
    out = gst_harness_pull(src);
    fail_unless_equals_int(caps_width(src), 4);
    gst_buffer_unref(out);
    /* Released without the end marker: a lost publisher, EOS by default. */
    publisher_free(&p);
    fail_unless(got_event(src, GST_EVENT_EOS));
    gst_harness_teardown(src);
}
GST_END_TEST;

/* Caps follow each change of the description at the first frame published after it, however
 * many unchanged frames came before, and a description set again to the same text (a new
 * record, the same caps) renegotiates nothing. */
GST_START_TEST(test_src_caps_follow_each_description_change) {
    Publisher p = publisher_new("gen");
    fail_unless_equals_int(
        px_publisher_set_description(p.pub, "video/x-raw,format=GRAY8,width=4,height=4"), PX_OK);
    GstHarness *src = src_harness("gen", NULL);
    publisher_wait_for(&p, 1);
    for (int i = 0; i < 3; i++)
        fail_unless_equals_int(width_after_frame(&p, src), 4);
    fail_unless_equals_int(caps_events_queued(src), 1); /* once, not at every frame */
    fail_unless_equals_int(
        px_publisher_set_description(p.pub, "video/x-raw,format=GRAY8,width=2,height=8"), PX_OK);
    fail_unless_equals_int(width_after_frame(&p, src), 2);
    fail_unless_equals_int(caps_events_queued(src), 1);
    fail_unless_equals_int(
        px_publisher_set_description(p.pub, "video/x-raw,format=GRAY8,width=2,height=8"), PX_OK);
    fail_unless_equals_int(width_after_frame(&p, src), 2);
    fail_unless_equals_int(caps_events_queued(src), 0);
    fail_unless_equals_int(
        px_publisher_set_description(p.pub, "video/x-raw,format=GRAY8,width=1,height=16"),
        PX_OK);
    fail_unless_equals_int(width_after_frame(&p, src), 1);
    fail_unless_equals_uint64(stat_u64(src, "parallaxsrc", "received"), 6);
    fail_unless_equals_uint64(stat_u64(src, "parallaxsrc", "missed"), 0);
    publisher_free(&p);
    gst_harness_teardown(src);
}
GST_END_TEST;

/* The src's GstBuffers come from its pool and are used again: one marked and released comes
 * back within the pool's ready ones (a buffer made afresh would carry no mark). */
GST_START_TEST(test_src_reuses_its_buffers) {
    static GQuark mark;
    mark = g_quark_from_static_string("px-test-mark");
    Publisher p = publisher_new("reuse");
    GstHarness *src = src_harness("reuse", NULL);
    publisher_wait_for(&p, 1);
    gboolean seen = FALSE;
    for (int i = 0; i < 8 && !seen; i++) {
        px_buffer_t *keep = NULL;
        publish(&p, 16, (guint8)i, &keep);
        px_buffer_release(keep);
        GstBuffer *out = gst_harness_pull(src);
        fail_unless(out->pool != NULL, "a frame's GstBuffer is not from a pool");
        seen = i > 0 && gst_mini_object_get_qdata(GST_MINI_OBJECT_CAST(out), mark) != NULL;
        if (i == 0)
            gst_mini_object_set_qdata(GST_MINI_OBJECT_CAST(out), mark, GINT_TO_POINTER(1), NULL);
        gst_buffer_unref(out);
    }
    fail_unless(seen, "the first frame's GstBuffer never came back");
    /* Every frame's slot went home with its buffer. */
    fail_unless_equals_uint64(px_pool_available(p.pool), px_pool_capacity(p.pool));
    publisher_free(&p);
    gst_harness_teardown(src);
}
GST_END_TEST;

/* on-publisher-lost=error: a publisher gone without EOS is an error on the bus. */
GST_START_TEST(test_src_lost_publisher_is_an_error_when_asked) {
    Publisher p = publisher_new("lost");
    GstHarness *src = src_harness("lost", "on-publisher-lost=error");
    GstBus *bus = gst_bus_new();
    gst_element_set_bus(src->element, bus);
    publisher_wait_for(&p, 1);
    px_buffer_t *keep = NULL;
    publish(&p, 10, 1, &keep);
    px_buffer_release(keep);
    gst_buffer_unref(gst_harness_pull(src));
    publisher_free(&p);
    fail_unless(got_error(bus));
    gst_element_set_bus(src->element, NULL);
    gst_object_unref(bus);
    gst_harness_teardown(src);
}
GST_END_TEST;

/* A description that is not caps is an error naming it, not a crash. */
GST_START_TEST(test_src_rejects_description_that_is_not_caps) {
    Publisher p = publisher_new("notcaps");
    fail_unless_equals_int(px_publisher_set_description(p.pub, "{\"json\": 1}"), PX_OK);
    GstHarness *src = src_harness("notcaps", NULL);
    GstBus *bus = gst_bus_new();
    gst_element_set_bus(src->element, bus);
    publisher_wait_for(&p, 1);
    px_buffer_t *keep = NULL;
    publish(&p, 10, 1, &keep);
    px_buffer_release(keep);
    fail_unless(got_error(bus));
    gst_element_set_bus(src->element, NULL);
    gst_object_unref(bus);
    gst_harness_teardown(src);
    publisher_free(&p);
}
GST_END_TEST;

/* ---- bad settings ---------------------------------------------------------------------------- */

static GstStateChangeReturn start(const char *launch) {
    GstElement *e = gst_parse_launch(launch, NULL);
    fail_unless(e != NULL);
    GstStateChangeReturn r = gst_element_set_state(e, GST_STATE_PAUSED);
    if (r == GST_STATE_CHANGE_ASYNC)
        r = gst_element_get_state(e, NULL, NULL, 5 * GST_SECOND);
    gst_element_set_state(e, GST_STATE_NULL);
    gst_object_unref(e);
    return r;
}

GST_START_TEST(test_bad_settings_fail_to_start) {
    /* No stream name; history leaves no slot to fill; a malformed name. */
    fail_unless_equals_int(start("fakesrc ! parallaxsink"), GST_STATE_CHANGE_FAILURE);
    fail_unless_equals_int(start("fakesrc ! parallaxsink stream=h slots=4 history=4"),
                           GST_STATE_CHANGE_FAILURE);
    fail_unless_equals_int(start("fakesrc ! parallaxsink stream=.hidden"),
                           GST_STATE_CHANGE_FAILURE);
    fail_unless_equals_int(start("parallaxsrc ! fakesink"), GST_STATE_CHANGE_FAILURE);
    /* Two sinks on one stream: the second finds a live publisher. */
    GstElement *first = gst_parse_launch("fakesrc ! parallaxsink stream=twice", NULL);
    gst_element_set_state(first, GST_STATE_PAUSED);
    gst_element_get_state(first, NULL, NULL, 5 * GST_SECOND);
    fail_unless_equals_int(start("fakesrc ! parallaxsink stream=twice"),
                           GST_STATE_CHANGE_FAILURE);
    gst_element_set_state(first, GST_STATE_NULL);
    gst_object_unref(first);
}
GST_END_TEST;

/* A frame larger than a fixed slot-size is an error, not an overflow. */
GST_START_TEST(test_frame_larger_than_slot_size_is_an_error) {
    GstHarness *sink = gst_harness_new_parse("parallaxsink stream=small slot-size=1024");
    GstBus *bus = gst_bus_new();
    gst_element_set_bus(sink->element, bus);
    gst_harness_set_src_caps_str(sink, "application/octet-stream");
    fail_unless_equals_int(gst_harness_push(sink, gst_buffer_new_allocate(NULL, 2048, NULL)),
                           GST_FLOW_ERROR);
    fail_unless(got_error(bus));
    gst_element_set_bus(sink->element, NULL);
    gst_object_unref(bus);
    gst_harness_teardown(sink);
}
GST_END_TEST;

/* ---- typed frames ---------------------------------------------------------------------------- */

typedef struct {
    const char *name;
    px_status_t rc;
    px_format_t fmt;
    size_t len;
} Receiver;

/* A subscriber of the C API (its own thread: the sink admits it while render waits for it). */
static gpointer receive_one(gpointer data) {
    Receiver *r = data;
    px_subscriber_t *sub = NULL;
    r->rc = px_subscriber_new(r->name, 5 * SECOND_NS, &sub);
    if (r->rc != PX_OK)
        return NULL;
    px_buffer_t *buf = NULL;
    r->rc = px_subscriber_recv(sub, 5 * SECOND_NS, &buf);
    if (r->rc == PX_OK) {
        r->rc = px_buffer_format(buf, &r->fmt);
        r->len = px_buffer_len(buf);
        px_buffer_release(buf);
    }
    px_subscriber_release(sub);
    return NULL;
}

/* The frame a subscriber receives when a buffer of `size` bytes (0: one frame of the caps) goes
 * through a parallaxsink with these caps; `warned` says whether the sink posted a warning. */
static Receiver typed_frame(const char *name, const char *caps_str, gsize size, gboolean *warned) {
    if (size == 0) {
        GstVideoInfo info;
        GstCaps *caps = gst_caps_from_string(caps_str);
        fail_unless(gst_video_info_from_caps(&info, caps));
        gst_caps_unref(caps);
        size = info.size;
    }
    gchar *desc = g_strdup_printf("parallaxsink stream=%s wait-for-subscribers=1", name);
    GstHarness *sink = gst_harness_new_parse(desc);
    g_free(desc);
    GstBus *bus = gst_bus_new();
    gst_element_set_bus(sink->element, bus);
    gst_harness_set_src_caps_str(sink, caps_str);
    Receiver r = {.name = name};
    GThread *thread = g_thread_new("receiver", receive_one, &r);
    fail_unless_equals_int(gst_harness_push(sink, gst_buffer_new_allocate(NULL, size, NULL)),
                           GST_FLOW_OK);
    g_thread_join(thread);
    fail_unless_equals_int(r.rc, PX_OK);
    fail_unless_equals_uint64(r.len, size);
    GstMessage *m = gst_bus_pop_filtered(bus, GST_MESSAGE_WARNING);
    if (warned != NULL)
        *warned = m != NULL;
    if (m != NULL)
        gst_message_unref(m);
    gst_element_set_bus(sink->element, NULL);
    gst_object_unref(bus);
    gst_harness_teardown(sink);
    return r;
}

static void check_shape(const px_format_t *f, guint32 dtype, guint32 ndim, const gint64 *shape,
                        const gint64 *strides) {
    fail_unless_equals_int(f->dtype, dtype);
    fail_unless_equals_int(f->ndim, ndim);
    for (guint32 i = 0; i < ndim; i++) {
        fail_unless_equals_int64(f->shape[i], shape[i]);
        fail_unless_equals_int64(f->strides[i], strides[i]);
    }
}

/* Packed RGB-like caps become H x W x C u8 frames with the row stride of GstVideoInfo, seen by
 * a subscriber of the C API in another thread over the stream. */
GST_START_TEST(test_frames_typed_from_caps) {
    Receiver r = typed_frame("t-rgb", RGB_CAPS, 0, NULL);
    check_shape(&r.fmt, PX_DTYPE_U8, 3, (gint64[]){48, 64, 3}, (gint64[]){192, 3, 1});
    fail_unless_equals_int(r.fmt.fourcc, GST_MAKE_FOURCC('R', 'G', 'B', '3'));
    /* 30 RGB pixels are 90 bytes; GStreamer pads rows to 92: the stride says so. */
    r = typed_frame("t-pad", "video/x-raw,format=RGB,width=30,height=20,framerate=1/1", 0, NULL);
    check_shape(&r.fmt, PX_DTYPE_U8, 3, (gint64[]){20, 30, 3}, (gint64[]){92, 3, 1});
    fail_unless_equals_uint64(r.len, 92 * 20);
    /* The padding byte of BGRx is a channel of its own. */
    r = typed_frame("t-bgrx", "video/x-raw,format=BGRx,width=16,height=8,framerate=1/1", 0, NULL);
    check_shape(&r.fmt, PX_DTYPE_U8, 3, (gint64[]){8, 16, 4}, (gint64[]){64, 4, 1});
    fail_unless_equals_int(r.fmt.fourcc, GST_MAKE_FOURCC('B', 'G', 'R', 'x'));
    /* One component: H x W. */
    r = typed_frame("t-gray", "video/x-raw,format=GRAY8,width=10,height=4,framerate=1/1", 0, NULL);
    check_shape(&r.fmt, PX_DTYPE_U8, 2, (gint64[]){4, 10}, (gint64[]){12, 1});
    fail_unless_equals_int(r.fmt.fourcc, GST_MAKE_FOURCC('G', 'R', 'E', 'Y'));
    r = typed_frame("t-gray16", "video/x-raw,format=GRAY16_LE,width=6,height=2,framerate=1/1", 0,
                    NULL);
    check_shape(&r.fmt, PX_DTYPE_U16, 2, (gint64[]){2, 6}, (gint64[]){12, 2});
}
GST_END_TEST;

/* Planar YUV and bytes that are not video stay untyped; a buffer smaller than a frame of its
 * caps goes out untyped with a warning, not as a format that would reach past its end. */
GST_START_TEST(test_frames_untyped_when_caps_say_no_array) {
    gboolean warned = TRUE;
    Receiver r = typed_frame("u-i420", "video/x-raw,format=I420,width=16,height=16,framerate=1/1",
                             0, &warned);
    fail_unless_equals_int(r.fmt.ndim, 0);
    fail_unless(!warned);
    r = typed_frame("u-bytes", "application/octet-stream", 100, &warned);
    fail_unless_equals_int(r.fmt.ndim, 0);
    fail_unless(!warned);
    r = typed_frame("u-short", RGB_CAPS, 100, &warned);
    fail_unless_equals_int(r.fmt.ndim, 0);
    fail_unless(warned, "no warning for a buffer smaller than its caps");
}
GST_END_TEST;

static Suite *parallax_suite(void) {
    Suite *s = suite_create("parallax");
    TCase *tc = tcase_create("elements");
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);
    tcase_add_test(tc, test_zero_copy_from_upstream_pool_to_src_output);
    tcase_add_test(tc, test_foreign_buffer_copied_once);
    tcase_add_test(tc, test_src_caps_follow_description_and_slots_go_home);
    tcase_add_test(tc, test_src_caps_follow_each_description_change);
    tcase_add_test(tc, test_src_reuses_its_buffers);
    tcase_add_test(tc, test_sink_pool_reuses_buffers_not_slots);
    tcase_add_test(tc, test_caps_change_crosses_from_sink_to_src);
    tcase_add_test(tc, test_src_lost_publisher_is_an_error_when_asked);
    tcase_add_test(tc, test_src_rejects_description_that_is_not_caps);
    tcase_add_test(tc, test_bad_settings_fail_to_start);
    tcase_add_test(tc, test_frame_larger_than_slot_size_is_an_error);
    tcase_add_test(tc, test_frames_typed_from_caps);
    tcase_add_test(tc, test_frames_untyped_when_caps_say_no_array);
    return s;
}

/* Streams of these tests live in a fresh private directory, removed at the end. */
static void remove_runtime_dir(void) {
    GDir *dir = g_dir_open(runtime_dir, 0, NULL);
    const gchar *name;
    while (dir && (name = g_dir_read_name(dir)) != NULL) {
        gchar *path = g_build_filename(runtime_dir, name, NULL);
        g_remove(path);
        g_free(path);
    }
    if (dir)
        g_dir_close(dir);
    g_rmdir(runtime_dir);
}

int main(int argc, char **argv) {
    runtime_dir = g_strdup("/tmp/px-gst-test.XXXXXX");
    if (g_mkdtemp(runtime_dir) == NULL) /* mode 0700 */
        return 1;
    g_setenv("PARALLAX_RUNTIME_DIR", runtime_dir, TRUE);
    gst_check_init(&argc, &argv);
    const int failed = gst_check_run_suite(parallax_suite(), "parallax", __FILE__);
    remove_runtime_dir();
    g_free(runtime_dir);
    return failed;
}

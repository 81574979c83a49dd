# SPDX-License-Identifier: Apache-2.0 OR MIT
# Shared by run.sh and count.sh (sourced): the pipelines both transports run, and the helpers
# that start them. Expects $root (the source tree) and $tmp (a scratch directory that is also
# PARALLAX_RUNTIME_DIR and holds the shmsink sockets).

# plugin_setup LABEL BUILD_DIR: makes $tmp/env.LABEL, sourced before a run of that build's
# plugin (its own registry file: two builds' plugins both named "parallax" must not meet).
plugin_setup() {
  local label=$1 dir
  dir=$(cd "$2" && pwd)
  [ -f "$dir/bindings/gstreamer/plugin/libgstparallax.so" ] ||
    { echo "no plugin in $dir/bindings/gstreamer/plugin" >&2; exit 1; }
  cat >"$tmp/env.$label" <<EOF
export GST_PLUGIN_PATH=$dir/bindings/gstreamer/plugin GST_REGISTRY=$tmp/registry.$label.bin
EOF
  (. "$tmp/env.$label" && gst-inspect-1.0 parallaxsink >/dev/null)
}

# Builds px_gst_meter into $tmp and checks the elements the shm runs need.
bench_setup() {
  export PARALLAX_RUNTIME_DIR=$tmp GST_REGISTRY_FORK=no
  (export GST_REGISTRY=$tmp/registry.shm.bin && gst-inspect-1.0 shmsink >/dev/null &&
    gst-inspect-1.0 imagefreeze >/dev/null)
  # shellcheck disable=SC2046
  cc -O2 -o "$tmp/px_gst_meter" "$root/bench/gstreamer/px_gst_meter.c" \
    $(pkg-config --cflags --libs gstreamer-1.0)
}

# Waits up to 5 s for socket $1 to appear.
wait_socket() {
  local i
  for ((i = 0; i < 100; i++)); do [ -S "$1" ] && return 0; sleep 0.05; done
  echo "no socket $1 after 5 s" >&2
  return 1
}

caps_of() { # WIDTH HEIGHT
  echo "video/x-raw,format=RGB,width=$1,height=$2,framerate=30/1"
}

dims_of() { # SIZE (1080p or 4K)
  if [ "$1" = 4K ]; then echo "3840 2160"; else echo "1920 1080"; fi
}

# producer_head KIND CAPS N: the pipeline up to the sink.
#   write   videotestsrc pattern=black: writes every frame (it renders a static pattern once and
#           copies it into each new buffer), into whatever memory the sink offers upstream;
#   copy    the same behind `identity drop-allocation=true`: upstream writes into its own memory
#           and the sink copies each frame into shared memory;
#   freeze  videotestsrc num-buffers=1 ! imagefreeze: the same buffer pushed again and again,
#           so the producer writes nothing and what is measured is the transport alone.
producer_head() {
  local kind=$1 caps=$2 n=$3
  case $kind in
  write) echo "videotestsrc pattern=black num-buffers=$n ! $caps" ;;
  copy) echo "videotestsrc pattern=black num-buffers=$n ! $caps ! identity drop-allocation=true" ;;
  freeze) echo "videotestsrc pattern=black num-buffers=1 ! $caps ! imagefreeze num-buffers=$n" ;;
  *) echo "unknown producer $kind" >&2; return 1 ;;
  esac
}

# The consumer's fakesink keeps no last sample: shmsink's EOS waits until every buffer it sent
# is given back, so a held last buffer hangs it for ever.
CONSUMER_TAIL="fakesink name=meter sync=false enable-last-sample=false"

# parallax_producer HEAD TAG: the producer pipeline's words after HEAD. It holds its first
# frame until the consumer has joined; policy=block so that no frame is dropped.
parallax_producer() {
  echo "$1 ! parallaxsink name=meter stream=$2 wait-for-subscribers=1 policy=block"
}
parallax_consumer() { # TAG TIMEOUT_S
  echo "parallaxsrc stream=$1 timeout=$(($2 * 1000000000)) ! $CONSUMER_TAIL"
}

# shm_producer KIND HEAD TAG FRAME_BYTES. shm-size: room for 10 frames (parallaxsink's default
# slots) plus the alignment padding of its allocator. buffer-time (write only): at most 4 frames
# (of 30/1) sent and not yet given back, as parallaxsink's max-in-flight=4. Without it, when
# upstream allocates from shmsink's allocator, shmsink never waits for the consumer: upstream's
# buffer pool grows until the area is full, the next buffer falls back to system memory, and
# shmsink waits for a free block that the pool's idle buffers keep, for ever. copy needs no
# limit (shmsink's own blocks come back when the consumer releases them) and freeze must not
# have one: the same block sent again and again with a buffer-time hangs shmsink too.
shm_producer() {
  local kind=$1 head=$2 tag=$3 frame=$4 buffer_time=-1
  [ "$kind" = write ] && buffer_time=133333333
  echo "$head ! shmsink name=meter socket-path=$tmp/$tag shm-size=$((frame * 10 + 1048576))" \
    "buffer-time=$buffer_time wait-for-connection=true sync=false"
}
shm_consumer() { # TAG CAPS
  echo "shmsrc socket-path=$tmp/$1 is-live=false ! $2 ! $CONSUMER_TAIL"
}

# pipelines VARIANT KIND SIZE FRAMES TAG LIMIT_S: sets the caller's $prod and $cons (declare
# them local) to the producer's and the consumer's pipeline for VARIANT (shm, or a label of
# plugin_setup, whose environment it takes).
pipelines() {
  local variant=$1 kind=$2 size=$3 n=$4 tag=$5 limit_s=$6 w h caps head
  read -r w h <<<"$(dims_of "$size")"
  caps=$(caps_of "$w" "$h")
  head=$(producer_head "$kind" "$caps" "$n")
  if [ "$variant" = shm ]; then
    prod=$(shm_producer "$kind" "$head" "$tag" $((w * h * 3)))
    cons=$(shm_consumer "$tag" "$caps")
  else
    # shellcheck disable=SC1090
    . "$tmp/env.$variant"
    prod=$(parallax_producer "$head" "$tag")
    cons=$(parallax_consumer "$tag" "$limit_s")
  fi
}

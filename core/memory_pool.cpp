#include "core/memory_pool.hpp"

#include <algorithm>
#include <cerrno>
#include <mutex>
#include <poll.h>
#include <string>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/clock.hpp"
#include "core/cpu_relax.hpp"
#include "core/error.hpp"

namespace px {

// ----------------------------------------------------------------------------------------------
// Return sources (channel return paths) known to this process.

namespace {

struct ReturnRegistry {
    std::mutex mutex;
    std::vector<Ref<ReturnSource>> sources;
    std::atomic<size_t> count{0};
};

ReturnRegistry &registry() {
    static ReturnRegistry *r = new ReturnRegistry; // never destroyed: used from atexit paths
    return *r;
}

std::vector<Ref<ReturnSource>> snapshot_sources() {
    auto &r = registry();
    std::lock_guard lock(r.mutex);
    return r.sources;
}

} // namespace

void register_return_source(ReturnSource *source) {
    auto &r = registry();
    std::lock_guard lock(r.mutex);
    r.sources.emplace_back(source);
    r.count.store(r.sources.size(), std::memory_order_release);
}

void unregister_return_source(ReturnSource *source) noexcept {
    Ref<ReturnSource> keep; // dropped outside the lock
    auto &r = registry();
    std::lock_guard lock(r.mutex);
    auto it = std::find_if(r.sources.begin(), r.sources.end(),
                           [&](const Ref<ReturnSource> &s) { return s.get() == source; });
    if (it != r.sources.end()) {
        keep = std::move(*it);
        r.sources.erase(it);
    }
    r.count.store(r.sources.size(), std::memory_order_release);
}

void collect_all_returns(bool thorough) noexcept {
    if (registry().count.load(std::memory_order_acquire) == 0)
        return;
    // Reused per thread: a pool that runs dry on every frame allocates nothing here.
    thread_local std::vector<Ref<ReturnSource>> sources;
    {
        auto &r = registry();
        std::lock_guard lock(r.mutex);
        sources = r.sources;
    }
    for (auto &s : sources)
        s->collect(thorough);
    sources.clear();
}

// ----------------------------------------------------------------------------------------------

size_t Slot::size() const noexcept { return pool_->slot_size(); }

void Slot::last_reference_dropped() noexcept { MemoryPool::give_back(*this); }

Ref<MemoryPool> MemoryPool::create(Ref<Segment> segment, size_t slot_size) {
    if (!segment)
        fail(Status::invalid, "segment is NULL");
    if (slot_size == 0)
        fail(Status::invalid, "slot_size is 0");
    if (slot_size > segment->size())
        fail(Status::invalid, "slot_size " + std::to_string(slot_size) +
                                  " is larger than the segment (" +
                                  std::to_string(segment->size()) + " bytes)");
    if (segment->readonly())
        fail(Status::unsupported, "the segment is read-only; a pool needs writable memory");
    size_t capacity = segment->size() / slot_size;
    if (capacity > UINT32_MAX)
        fail(Status::invalid, "slot_size " + std::to_string(slot_size) + " gives " +
                                  std::to_string(capacity) + " slots, more than 2^32");
    return Ref<MemoryPool>::adopt(new MemoryPool(std::move(segment), slot_size, capacity));
}

MemoryPool::MemoryPool(Ref<Segment> segment, size_t slot_size, size_t capacity)
    : segment_(std::move(segment)), slot_size_(slot_size), capacity_(capacity),
      bitmap_(capacity), slots_(new Slot[capacity]) {
    for (size_t i = 0; i < capacity; ++i) {
        slots_[i].pool_ = this;
        slots_[i].index_ = i;
        slots_[i].data_ = segment_->mutable_data() + i * slot_size;
        slots_[i].word_ = &bitmap_.word_of(i);
        slots_[i].mask_ = AtomicBitmap::mask_of(i);
        slots_[i].reset_refs(0);
    }
    wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK | EFD_SEMAPHORE);
    if (wake_fd_ < 0)
        fail_errno("eventfd", errno);
}

MemoryPool::~MemoryPool() {
    if (wake_fd_ >= 0)
        ::close(wake_fd_);
}

size_t MemoryPool::available() const noexcept {
    collect_all_returns();
    return bitmap_.count_free();
}

bool MemoryPool::owns(const std::byte *p, size_t len) const noexcept {
    const std::byte *base = segment_->data();
    return p >= base && len <= capacity_ * slot_size_ &&
           static_cast<size_t>(p - base) <= capacity_ * slot_size_ - len;
}

void MemoryPool::wake_waiter() noexcept {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
}

void MemoryPool::give_back_slow(size_t index, AtomicBitmap::Released r) noexcept {
    if (r.waker) {
        wake_waiter();
        if (bitmap_.waker_done(index))
            report_done(); // the owner left while we were waking
    } else if (r.closed) {
        report_done();
    }
}

void MemoryPool::report_done() noexcept {
    if (outstanding_.fetch_sub(1, std::memory_order_acq_rel) == 1)
        delete this;
}

void MemoryPool::last_reference_dropped() noexcept {
    // No owner can loan any more; count what is still out, then take the bias away.
    auto counted = static_cast<int64_t>(bitmap_.close());
    if (outstanding_.fetch_add(counted - open_bias, std::memory_order_acq_rel) ==
        open_bias - counted)
        delete this;
}

void MemoryPool::start_waiting() {
    std::lock_guard lock(wait_mutex_);
    if (waiters_++ == 0)
        bitmap_.set_waiting(true);
}

void MemoryPool::stop_waiting() noexcept {
    std::lock_guard lock(wait_mutex_);
    if (--waiters_ == 0)
        bitmap_.set_waiting(false);
}

Slot *MemoryPool::loan(int64_t timeout_ns) {
    if (Slot *s = try_loan())
        return s;
    collect_all_returns();
    if (Slot *s = try_loan())
        return s;
    if (timeout_ns == 0)
        fail(Status::would_block, "every one of the pool's " + std::to_string(capacity_) +
                                      " slots is out");
    const int64_t deadline = deadline_for(timeout_ns);
    if (Slot *s = spin_for_slot(deadline))
        return s;
    return sleep_for_slot(deadline, timeout_ns);
}

Slot *MemoryPool::spin_for_slot(int64_t deadline_ns) {
    // A slot lent to a busy peer usually comes back within microseconds, far sooner than a
    // sleep and a wake-up take.
    constexpr int64_t max_spin_ns = 50'000;
    auto sources = snapshot_sources();
    const int64_t spin_start = now_ns();
    const int64_t spin_until = std::min(deadline_ns, spin_start + max_spin_ns);
    do {
        for (auto &src : sources)
            src->collect(false);
        if (Slot *s = try_loan())
            return s;
        spin_step(now_ns() - spin_start);
    } while (now_ns() < spin_until);
    return nullptr;
}

Slot *MemoryPool::sleep_for_slot(int64_t deadline_ns, int64_t timeout_ns) {
    // From here on every release in the pool wakes us (see AtomicBitmap): mark the words, then
    // look once more (below), so that a release made in between is not slept through.
    start_waiting();
    struct Leave {
        MemoryPool &pool;
        ~Leave() { pool.stop_waiting(); }
    } leave{*this};

    std::vector<pollfd> fds;
    std::vector<Ref<ReturnSource>> sources;
    // However we leave, the sources we asked to ring the socket (set_waiting(true) below) are
    // told that this pool no longer waits.
    struct UnmarkSources {
        std::vector<Ref<ReturnSource>> &s;
        ~UnmarkSources() {
            for (auto &src : s)
                src->set_waiting(false);
        }
    } unmark_sources{sources};
    for (;;) {
        if (Slot *s = try_loan())
            return s;
        for (auto &src : sources)
            src->set_waiting(false);
        sources = snapshot_sources();
        // Ask borrowers to ring the socket from now on, then look once more, so that a return
        // made in between is not slept through.
        for (auto &src : sources)
            src->set_waiting(true);
        for (auto &src : sources)
            src->collect(true);
        if (Slot *s = try_loan())
            return s;

        fds.clear();
        fds.push_back({wake_fd_, POLLIN, 0});
        for (auto &src : sources)
            src->add_wait_fds(fds);
        const int64_t left = timeout_left(deadline_ns, now_ns());
        if (left == 0)
            fail(Status::timeout, "no slot came back within " + std::to_string(timeout_ns) +
                                      " ns (all " + std::to_string(capacity_) + " are out)");
        const timespec ts = timespec_from_ns(left < 0 ? 0 : left);
        int rc = ::ppoll(fds.data(), fds.size(), left < 0 ? nullptr : &ts, nullptr);
        if (rc < 0 && errno != EINTR)
            fail_errno("ppoll", errno);
        if (fds[0].revents & POLLIN) {
            uint64_t v;
            [[maybe_unused]] ssize_t n = ::read(wake_fd_, &v, sizeof v);
        }
    }
}

} // namespace px

#include "transport/loop/loop_inbox.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <unordered_map>

namespace cohort::transport::loop {

namespace {

struct Table {
  std::mutex mu;
  std::uint64_t next = 1;
  std::unordered_map<std::uint64_t, std::weak_ptr<Inbox>> inboxes;
};

Table& table() {
  // Never destroyed: endpoints may be closed from static destructors.
  static Table* t = new Table;
  return *t;
}

}  // namespace

Inbox::Inbox(std::uint64_t number, UniqueFd event_fd)
    : number_(number), event_(std::move(event_fd)) {}

void Inbox::signal_locked() {
  if (signalled_) return;
  std::uint64_t one = 1;
  if (::write(event_.get(), &one, sizeof one) == sizeof one) signalled_ = true;
}

bool Inbox::push(Item&& item) {
  std::lock_guard lock(mu_);
  if (closed_) return false;
  items_.push_back(std::move(item));
  signal_locked();
  return true;
}

void Inbox::take(std::deque<Item>& into) {
  std::lock_guard lock(mu_);
  for (Item& item : items_) into.push_back(std::move(item));
  items_.clear();
  if (signalled_) {
    std::uint64_t v;
    (void)::read(event_.get(), &v, sizeof v);
    signalled_ = false;
  }
}

void Inbox::signal() {
  std::lock_guard lock(mu_);
  signal_locked();
}

std::deque<Item> Inbox::close() {
  std::lock_guard lock(mu_);
  closed_ = true;
  return std::move(items_);
}

Result<std::shared_ptr<Inbox>> create_inbox() {
  UniqueFd fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!fd) return errno_status(Errc::kIoError, "loop endpoint: eventfd", errno);
  Table& t = table();
  std::lock_guard lock(t.mu);
  auto inbox = std::make_shared<Inbox>(t.next++, std::move(fd));
  t.inboxes[inbox->number()] = inbox;
  return inbox;
}

std::shared_ptr<Inbox> find_inbox(std::string_view address) {
  constexpr std::string_view kScheme = "loop:";
  if (address.substr(0, kScheme.size()) != kScheme) return nullptr;
  std::string_view digits = address.substr(kScheme.size());
  std::uint64_t number = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), number);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size()) return nullptr;
  Table& t = table();
  std::lock_guard lock(t.mu);
  auto it = t.inboxes.find(number);
  return it == t.inboxes.end() ? nullptr : it->second.lock();
}

void remove_inbox(std::uint64_t number) {
  Table& t = table();
  std::lock_guard lock(t.mu);
  t.inboxes.erase(number);
}

}  // namespace cohort::transport::loop

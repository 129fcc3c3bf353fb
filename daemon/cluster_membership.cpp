// The host table: joins, numbered events, heartbeats, failure and failover,
// removal of hosts. See cluster.hpp for the protocol.
#include <signal.h>

#include <algorithm>

#include "base/log.hpp"
#include "daemon/cluster.hpp"
#include "daemon/daemon.hpp"
#include "daemon/host_starter.hpp"
#include "daemon/ids.hpp"

namespace cohort::daemon {

namespace {
constexpr const char* kLog = "daemon.cluster";

}  // namespace

void Cluster::on_join(PeerLink& l, proto::JoinRequest& m) {
  proto::JoinReply r;
  if (!is_master()) {
    r.status = proto::to_wire(Errc::kInvalidArgument, "host " + std::to_string(self_) +
                                                " is not the master; join host " +
                                                std::to_string(master_) + " at " +
                                                hosts_[master_].address);
    send(l, r);
    return close_link(l, "it tried to join through a daemon that is not the master", false);
  }
  if (d_.halting()) {
    r.status = proto::to_wire(Errc::kVmHalted, "the VM is halting");
    send(l, r);
    return close_link(l, "the VM is halting", false);
  }
  // Indexes are never reused while the VM lives: tids carry them.
  std::uint32_t idx = next_index_;
  for (const auto& [i, h] : hosts_) idx = std::max(idx, i + 1);
  if (!dead_.empty()) idx = std::max(idx, *dead_.rbegin() + 1);
  next_index_ = idx + 1;
  proto::HostInfo h = m.host;
  h.index = idx;
  l.peer_index = idx;
  by_index_[idx] = l.id();
  last_heard_[idx] = Clock::now();
  broadcast(proto::HostEventKind::kAdd, h);
  r.index = idx;
  r.seq = seq_;
  r.master = master_;
  for (const auto& [i, info] : hosts_) r.hosts.push_back(info);
  send(l, r);
  COHORT_LOG_INFO(kLog) << "host " << idx << " (" << h.name << ", " << h.address << ") joined";
}

void Cluster::broadcast(proto::HostEventKind kind, const proto::HostInfo& h) {
  proto::HostEvent e;
  e.seq = seq_ + 1;
  e.kind = kind;
  e.master = master_;
  e.host = h;
  std::vector<std::uint32_t> to;
  for (const auto& [i, info] : hosts_)
    if (i != self_ && i != h.index) to.push_back(i);
  apply(e);
  for (std::uint32_t i : to) send_to(i, e);
}

void Cluster::on_host_event(PeerLink& l, proto::HostEvent& e) {
  if (e.seq <= seq_) return;  // already applied (a new master repeats nothing we lack)
  if (e.seq != seq_ + 1)
    COHORT_LOG_WARN(kLog) << "host event " << e.seq << " from " << l.describe()
                          << " skips events after " << seq_ << "; applying it anyway";
  apply(e);
}

void Cluster::apply(const proto::HostEvent& e) {
  seq_ = e.seq;
  std::uint32_t idx = e.host.index;
  if (e.master != master_) {
    COHORT_LOG_INFO(kLog) << "host " << e.master << " is now the master";
    master_ = e.master;
  }
  if (e.kind == proto::HostEventKind::kAdd) {
    hosts_[idx] = e.host;
    last_heard_[idx] = Clock::now();
    d_.notifier().host_event(proto::NotifyKind::kHostAdd, idx);
    return;
  }
  // Delete.
  if (idx == self_) {
    d_.begin_halt("this host was removed from the VM");
    return;
  }
  if (!hosts_.count(idx)) return;
  COHORT_LOG_INFO(kLog) << "host " << idx << " (" << hosts_[idx].name << ") left the VM";
  hosts_.erase(idx);
  dead_.insert(idx);
  last_heard_.erase(idx);
  if (auto it = by_index_.find(idx); it != by_index_.end())
    if (PeerLink* l = find_link(it->second)) close_link(*l, "its host left the VM", false);
  for (auto& [t, hosts] : remote_watchers_) hosts.erase(idx);
  fail_pending_for(idx);
  // Its tasks are gone with it: whoever watched them hears so, and sends to them fail.
  for (Tid t : d_.notifier().watched_on_host(idx)) d_.notifier().task_exited(t, ExitRecord{-1, 0});
  std::erase_if(watched_remote_, [idx](Tid t) { return tid::host_of(t) == idx; });
  d_.notifier().host_event(proto::NotifyKind::kHostDelete, idx);
  for (auto it = removals_.begin(); it != removals_.end();) {
    it->hosts.erase(idx);
    if (it->hosts.empty()) {
      proto::Ack ack;
      ack.req = it->req;
      d_.conns().send(it->conn, ack);
      it = removals_.erase(it);
    } else {
      ++it;
    }
  }
}

void Cluster::host_lost(std::uint32_t index, const std::string& why) {
  auto it = hosts_.find(index);
  if (it == hosts_.end() || index == self_) return;
  COHORT_LOG_WARN(kLog) << "host " << index << " (" << it->second.name << ") is lost: " << why;
  proto::HostInfo h = it->second;
  broadcast(proto::HostEventKind::kDelete, h);
}

void Cluster::link_lost(PeerLink& l) {
  std::uint32_t idx = l.peer_index;
  if (!hosts_.count(idx)) return;
  // A daemon's TCP link closes only when it exits: as good as a missed heartbeat.
  if (is_master()) return host_lost(idx, "its daemon closed the link");
  if (idx == master_) {
    last_heard_.erase(idx);
    check_liveness();
  }
}

void Cluster::heartbeat() {
  proto::Heartbeat hb;
  hb.index = self_;
  hb.seq = seq_;
  hb.master = master_;
  auto heard = last_heard_.find(master_);
  hb.hears_master = is_master() || (heard != last_heard_.end() &&
                                    Clock::now() - heard->second <= opts_.heartbeat_timeout);
  std::vector<std::uint32_t> to;
  for (const auto& [i, h] : hosts_)
    if (i != self_) to.push_back(i);
  for (std::uint32_t i : to) send_to(i, hb);
  drain_check();
}

void Cluster::check_liveness() {
  auto now = Clock::now();
  auto silent = [&](std::uint32_t i) {
    auto it = last_heard_.find(i);
    return it == last_heard_.end() || now - it->second > opts_.heartbeat_timeout;
  };
  if (is_master()) {
    std::vector<std::uint32_t> lost;
    for (const auto& [i, h] : hosts_)
      if (i != self_ && silent(i)) lost.push_back(i);
    for (std::uint32_t i : lost)
      host_lost(i, "no heartbeat for " + std::to_string(opts_.heartbeat_timeout.count()) + " ms");
    return;
  }
  if (!silent(master_)) {
    cut_off_since_.reset();
    return;
  }
  // The master is silent. It is gone only if the hosts we hear agree, and we
  // must hear a majority of the others: a host cut off from the master (or
  // from everybody) must not start a VM of its own. Every survivor then picks
  // the lowest index it still hears (itself included); that daemon takes over
  // and announces the loss.
  const std::uint32_t old = master_;
  std::uint32_t pick = self_;
  std::size_t others = 0, heard = 0;
  bool master_heard_elsewhere = false;
  for (const auto& [i, h] : hosts_) {
    if (i == old || i == self_) continue;
    ++others;
    if (silent(i)) continue;
    ++heard;
    pick = std::min(pick, i);
    if (auto it = hears_master_.find(i); it != hears_master_.end() && it->second)
      master_heard_elsewhere = true;
  }
  if (master_heard_elsewhere || 2 * (heard + 1) <= others + 1) {
    if (!cut_off_since_) {
      cut_off_since_ = now;
      COHORT_LOG_WARN(kLog) << "master host " << old << " is silent, but "
                            << (master_heard_elsewhere ? "other hosts still hear it"
                                                       : "we hear too few other hosts")
                            << ": this host is cut off";
    } else if (now - *cut_off_since_ > 2 * opts_.heartbeat_timeout) {
      // The master has removed us by now; our tasks cannot reach the VM.
      d_.begin_halt("cut off from the master and most of the VM");
    }
    return;
  }
  cut_off_since_.reset();
  COHORT_LOG_WARN(kLog) << "master host " << old << " is lost; host " << pick << " takes over";
  master_ = pick;
  if (pick == self_) host_lost(old, "the master stopped answering");
}

void Cluster::on_stop(proto::StopDaemon& m) {
  if (m.drain && d_.tasks().child_count() > 0) {
    COHORT_LOG_INFO(kLog) << "removed from the VM: waiting for " << d_.tasks().child_count()
                          << " task(s) to finish";
    draining_ = true;
    return;
  }
  d_.begin_halt("removed from the VM by the master");
}

void Cluster::drain_check() {
  if (draining_ && d_.tasks().child_count() == 0) {
    draining_ = false;
    d_.begin_halt("removed from the VM; its tasks have finished");
  }
}

void Cluster::remove_hosts(ClientConn& c, proto::RemoveHosts& m) {
  proto::Ack ack;
  ack.req = m.req;
  Removal r{c.id(), m.req, {}};
  std::string bad;
  for (const std::string& n : m.names) {
    std::uint32_t i = find_host(n);
    if (i == 0) bad += (bad.empty() ? "" : ", ") + ("'" + n + "' is not in the VM");
    else if (i == self_) bad += (bad.empty() ? "" : ", ") + ("'" + n + "' is this daemon's host (use 'cohort halt')");
    else r.hosts.insert(i);
  }
  if (!is_master())
    bad = "host " + std::to_string(self_) + " is not the master; run this on host " +
          std::to_string(master_) + " (" + hosts_[master_].name + ")";
  if (!bad.empty()) {
    ack.status = proto::to_wire(Errc::kNoSuchHost, bad);
    return d_.conns().send(c, ack);
  }
  proto::StopDaemon stop;
  stop.drain = m.drain;
  for (std::uint32_t i : r.hosts) {
    COHORT_LOG_INFO(kLog) << "removing host " << i << " (" << hosts_[i].name << ")"
                          << (m.drain ? ", once its tasks finish" : "");
    send_to(i, stop);
  }
  // Done when each daemon has gone (its link closes and the host is deleted).
  removals_.push_back(std::move(r));
}

void Cluster::halting() {
  if (!is_master()) return;
  // The master's halt is the VM's: every daemon stops with it.
  proto::StopDaemon stop;
  std::vector<std::uint32_t> to;
  for (const auto& [i, h] : hosts_)
    if (i != self_) to.push_back(i);
  for (std::uint32_t i : to) send_to(i, stop);
}

bool Cluster::child_exited(pid_t pid, int wait_status) {
  return starter_ && starter_->child_exited(pid, wait_status);
}

std::vector<proto::HostInfo> Cluster::host_list(std::uint32_t local_tasks) const {
  std::vector<proto::HostInfo> out;
  for (const auto& [i, h] : hosts_) {
    proto::HostInfo x = h;
    if (i == self_) x.ntasks = local_tasks;
    // A VM of one host is reached through its socket (and says so, as it
    // always has); with several, the table shows where daemons dial each other.
    if (hosts_.size() == 1) x.address = d_.hosts().list(0).front().address;
    out.push_back(std::move(x));
  }
  return out;
}

void Cluster::on_client_frame(ClientConn& c, const proto::FrameView& f) {
  if (f.type == proto::MsgType::kAddHosts) {
    proto::AddHosts m;
    if (Status s = proto::decode(f.body, m); !s.is_ok())
      return d_.conns().close_later(c, s.message(), true);
    if (!is_master()) {
      proto::AddHostsReply r;
      r.req = m.req;
      r.status = proto::to_wire(Errc::kInvalidArgument, "hosts are added through the master, host " +
                                                  std::to_string(master_) + " (" +
                                                  hosts_[master_].name + ")");
      return d_.conns().send(c, r);
    }
    return starter_->start(c, m);
  }
  if (f.type == proto::MsgType::kRemoveHosts) {
    proto::RemoveHosts m;
    if (Status s = proto::decode(f.body, m); !s.is_ok())
      return d_.conns().close_later(c, s.message(), true);
    return remove_hosts(c, m);
  }
  d_.conns().close_later(
      c, "it sent " + std::string(proto::msg_type_name(f.type)) + ", which only daemons send", true);
}

}  // namespace cohort::daemon

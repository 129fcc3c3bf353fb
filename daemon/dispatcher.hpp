// daemon/dispatcher.hpp — what the daemon does with each frame a client sends.
//
// One handler per message type of proto/messages.hpp. The first frame of a
// connection must be Hello (authentication and enrolment); every other
// request needs an enrolled connection. A frame that does not decode, a
// message only the daemon may send, a second Hello or a request before Hello
// drops the connection with one warn-level log line; nothing it asked for is
// done. Requests that are well-formed but wrong (unknown tid, bad count) are
// answered with an error status, and the connection stays.
//
// Holds a reference to the Daemon that owns it. Single-threaded.
#pragma once

#include <string>

#include "proto/frame.hpp"

namespace cohort::daemon {

class ClientConn;
class Daemon;

class Dispatcher {
 public:
  explicit Dispatcher(Daemon& d) : d_(d) {}
  /// Act on one frame from `c`. `f` is valid only during the call.
  void on_frame(ClientConn& c, const proto::FrameView& f);

 private:
  void on_hello(ClientConn& c, proto::Hello& m);
  void on_publish(ClientConn& c, proto::Publish& m);
  void on_resolve(ClientConn& c, proto::Resolve& m);
  void on_spawn(ClientConn& c, proto::Spawn& m);
  void on_notify(ClientConn& c, proto::Notify& m);
  void on_kill(ClientConn& c, proto::Kill& m);
  void on_halt(ClientConn& c, proto::Halt& m);
  void on_list_tasks(ClientConn& c, proto::ListTasks& m);
  void on_list_hosts(ClientConn& c, proto::ListHosts& m);
  void on_job_tids(ClientConn& c, proto::JobTids& m);
  void on_bye(ClientConn& c, proto::Bye& m);
  void on_transport_choice(ClientConn& c, proto::TransportChoice& m);
  void on_list_transports(ClientConn& c, proto::ListTransports& m);

  void welcome_error(ClientConn& c, Errc code, const std::string& why);
  /// Decode a body of type M and hand it to `handler`; drop the client if it does not decode.
  template <class M>
  void run(ClientConn& c, const proto::FrameView& f, void (Dispatcher::*handler)(ClientConn&, M&));

  Daemon& d_;
};

}  // namespace cohort::daemon

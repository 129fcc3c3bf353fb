// netprobe — a minimal TCP client/server for the emulated-cluster tests, so
// they need neither python nor nc on the machine.
//   netprobe serve                  listen on all addresses, port 0; print "port N";
//                                   answer one connection's line with "echo:<line>"
//   netprobe connect ADDR PORT MS   connect within MS milliseconds, send "ping",
//                                   print the reply; exit 0 on success, 1 otherwise
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

int serve() {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  if (s < 0 || ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(s, 4) != 0) {
    std::perror("netprobe serve");
    return 1;
  }
  socklen_t len = sizeof a;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  std::printf("port %d\n", ntohs(a.sin_port));
  std::fflush(stdout);
  ::alarm(120);  // never outlive a test that forgot us
  int c = ::accept(s, nullptr, nullptr);
  if (c < 0) return 1;
  char buf[256];
  ssize_t n = ::read(c, buf, sizeof buf - 1);
  if (n <= 0) return 1;
  buf[n] = 0;
  std::string reply = "echo:" + std::string(buf);
  return ::write(c, reply.data(), reply.size()) == static_cast<ssize_t>(reply.size()) ? 0 : 1;
}

int connect_to(const char* addr, int port, int ms) {
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::inet_pton(AF_INET, addr, &a.sin_addr) != 1) {
    std::fprintf(stderr, "netprobe: bad address %s\n", addr);
    return 2;
  }
  if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 && errno != EINPROGRESS) {
    std::fprintf(stderr, "netprobe: connect: %s\n", std::strerror(errno));
    return 1;
  }
  pollfd p{s, POLLOUT, 0};
  if (::poll(&p, 1, ms) != 1) {
    std::fprintf(stderr, "netprobe: connect timed out\n");
    return 1;
  }
  int err = 0;
  socklen_t len = sizeof err;
  ::getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) {
    std::fprintf(stderr, "netprobe: connect: %s\n", std::strerror(err));
    return 1;
  }
  if (::write(s, "ping\n", 5) != 5) return 1;
  p = {s, POLLIN, 0};
  if (::poll(&p, 1, ms) != 1) {
    std::fprintf(stderr, "netprobe: no reply\n");
    return 1;
  }
  char buf[256];
  ssize_t n = ::read(s, buf, sizeof buf - 1);
  if (n <= 0) return 1;
  buf[n] = 0;
  std::fputs(buf, stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "serve") == 0) return serve();
  if (argc == 5 && std::strcmp(argv[1], "connect") == 0)
    return connect_to(argv[2], std::atoi(argv[3]), std::atoi(argv[4]));
  std::fprintf(stderr, "usage: netprobe serve | netprobe connect ADDR PORT MS\n");
  return 2;
}

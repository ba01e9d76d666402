// Asio, Asio's OpenSSL layer (TLS) and Beast are compiled once here, for the server (net/) and the
// client library alike: BOOST_ASIO_SEPARATE_COMPILATION and BOOST_BEAST_SEPARATE_COMPILATION are
// defined for every target, which keeps the other translation units light on a two-core build
// machine and means a binary linking both sides holds one copy.
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>

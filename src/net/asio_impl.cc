// Asio and Beast are compiled once here (BOOST_ASIO_SEPARATE_COMPILATION and
// BOOST_BEAST_SEPARATE_COMPILATION are defined for every target), which keeps the other
// translation units light on a two-core build machine.
#include <boost/asio/impl/src.hpp>
#include <boost/beast/src.hpp>

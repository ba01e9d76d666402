# Helpers that make every module declare what it may depend on (see ../shared/design/style.md §10).
#
#   magnetar_add_library(NAME core SRCS a.cc b.cc DEPS magnetar_common)
#   magnetar_add_test(NAME core_test SRCS tests/x_test.cc DEPS magnetar_core)
#
# A module links only what it lists in DEPS, so an include of a module it does not list fails to
# link (and usually to compile: include paths come from src/, but symbols do not).

set(MAGNETAR_WARNINGS -Wall -Wextra -Werror -Wno-missing-field-initializers)
# GCC 12 at -O3 (Release) reports std::string concatenations as overlapping memcpy: a -Wrestrict
# false positive (GCC bug 105329, fixed in GCC 13) that would fail a Release build under -Werror.
# Release only, so the other build types keep their flags (and their ccache entries).
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  list(APPEND MAGNETAR_WARNINGS $<$<CONFIG:Release>:-Wno-restrict>)
endif()

# Asio and Beast compiled once (src/net/asio_impl.cc) instead of in every translation unit.
set(MAGNETAR_COMMON_DEFINITIONS
    BOOST_ASIO_SEPARATE_COMPILATION
    BOOST_BEAST_SEPARATE_COMPILATION
    BOOST_ASIO_NO_DEPRECATED)

set(MAGNETAR_SANITIZER_FLAGS "")
if(MAGNETAR_SANITIZE)
  set(MAGNETAR_SANITIZER_FLAGS -fsanitize=address,undefined -fno-omit-frame-pointer
      -fno-sanitize-recover=undefined)
endif()

# libFuzzer builds (-DMAGNETAR_FUZZ=ON, clang only; see fuzz/ and scripts/fuzz.sh): every library
# is coverage-instrumented and sanitised so the fuzz targets that link it see inside it.
if(MAGNETAR_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "MAGNETAR_FUZZ needs clang (libFuzzer): -DCMAKE_CXX_COMPILER=clang++")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
  # Boost assertions go through fuzz/boost_assert_handler.cc, which skips one assertion that
  # Boost 1.81 gets wrong (fixed upstream in Beast PR #2861) and aborts on every other.
  add_compile_definitions(BOOST_ENABLE_ASSERT_HANDLER)
endif()

function(magnetar_configure_target target)
  target_compile_options(${target} PRIVATE ${MAGNETAR_WARNINGS} ${MAGNETAR_SANITIZER_FLAGS})
  target_compile_definitions(${target} PUBLIC ${MAGNETAR_COMMON_DEFINITIONS})
  if(MAGNETAR_SANITIZE)
    target_link_options(${target} PUBLIC ${MAGNETAR_SANITIZER_FLAGS})
  endif()
endfunction()

function(magnetar_add_library)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS" ${ARGN})
  add_library(magnetar_${ARG_NAME} STATIC ${ARG_SRCS})
  # BUILD_INTERFACE: the client library is installed and exported (src/client/CMakeLists.txt).
  target_include_directories(magnetar_${ARG_NAME}
                             PUBLIC $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/src>)
  target_link_libraries(magnetar_${ARG_NAME} PUBLIC ${ARG_DEPS})
  magnetar_configure_target(magnetar_${ARG_NAME})
endfunction()

function(magnetar_add_test)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS" ${ARGN})
  if(NOT MAGNETAR_TESTS)
    return()
  endif()
  add_executable(${ARG_NAME} ${ARG_SRCS})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main GTest::gmock)
  target_include_directories(${ARG_NAME} PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR})
  magnetar_configure_target(${ARG_NAME})
  include(GoogleTest)
  gtest_discover_tests(${ARG_NAME} DISCOVERY_TIMEOUT 60 PROPERTIES LABELS unit)
endfunction()

# Declarative helpers so that each folder's CMakeLists.txt reads like a table.
include_guard(GLOBAL)

# Compile options every cohort target gets.
function(_cohort_common target)
  target_compile_features(${target} PUBLIC cxx_std_20)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wno-unused-parameter>)
  if(COHORT_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=${COHORT_SANITIZE} -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=${COHORT_SANITIZE})
  endif()
endfunction()

# cohort_add_library(NAME SOURCES ... [PUBLIC_DEPS ...] [PRIVATE_DEPS ...] [PUBLIC_INCLUDES ...])
# Every library also sees the source root, so private headers are included by path
# ("transport/tcp/tcp_endpoint.hpp"). Creates the alias cohort::NAME.
function(cohort_add_library name)
  cmake_parse_arguments(A "" "" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS;PUBLIC_INCLUDES" ${ARGN})
  add_library(${name} STATIC ${A_SOURCES})
  add_library(cohort::${name} ALIAS ${name})
  set_target_properties(${name} PROPERTIES POSITION_INDEPENDENT_CODE ON)
  target_include_directories(${name} PUBLIC $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}>)
  foreach(inc ${A_PUBLIC_INCLUDES})
    target_include_directories(${name} PUBLIC $<BUILD_INTERFACE:${inc}> $<INSTALL_INTERFACE:include>)
  endforeach()
  target_link_libraries(${name} PUBLIC ${A_PUBLIC_DEPS} PRIVATE ${A_PRIVATE_DEPS})
  _cohort_common(${name})
endfunction()

# cohort_add_executable(NAME SOURCES ... [DEPS ...])
function(cohort_add_executable name)
  cmake_parse_arguments(A "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${A_SOURCES})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PRIVATE ${A_DEPS})
  _cohort_common(${name})
endfunction()

# cohort_add_test(NAME SOURCES ... [DEPS ...] [LABELS ...] [TIMEOUT seconds])
# One GoogleTest binary; each TEST becomes a ctest test with the given labels.
function(cohort_add_test name)
  cmake_parse_arguments(A "" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  if(NOT A_TIMEOUT)
    set(A_TIMEOUT 60)
  endif()
  add_executable(${name} ${A_SOURCES})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PRIVATE ${A_DEPS} GTest::gtest GTest::gtest_main)
  _cohort_common(${name})
  gtest_discover_tests(${name}
    PROPERTIES LABELS "${A_LABELS}" TIMEOUT ${A_TIMEOUT}
      ENVIRONMENT "COHORT_BIN_DIR=${CMAKE_RUNTIME_OUTPUT_DIRECTORY}"
    DISCOVERY_TIMEOUT 30)
endfunction()

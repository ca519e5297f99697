# tinygen.cmake: builds the tinygen C API's static library through cargo
# and defines an imported target for it. Include it from any CMake project
# (a Zephyr or ESP-IDF component included):
#
#   include(path/to/tinygen/capi/cmake/tinygen.cmake)
#   tinygen_add_library(tinygen RUST_TARGET thumbv7em-none-eabihf)
#   target_link_libraries(app PRIVATE tinygen)   # tinygen.h comes along
#
# RUST_TARGET is the Rust target of the core (thumbv6m-none-eabi for a
# Cortex-M0/M0+, thumbv7m-none-eabi for an M3, thumbv7em-none-eabihf for an
# M4F/M7, thumbv8m.main-none-eabihf for an M33, riscv32imac-unknown-none-elf
# for a RISC-V rv32imac), or "host" for the machine CMake runs on. Needs
# cargo (rustup with the target added). TARGET_DIR sets cargo's target
# directory (default: ${CMAKE_BINARY_DIR}/cargo); the environment's
# CARGO_TARGET_DIR is not used, so that builds never share a lock by
# surprise.

set(TINYGEN_ROOT "${CMAKE_CURRENT_LIST_DIR}/../.." CACHE PATH "The tinygen repository")
find_program(TINYGEN_CARGO cargo HINTS "$ENV{HOME}/.cargo/bin" REQUIRED)

function(tinygen_add_library name)
  cmake_parse_arguments(ARG "" "RUST_TARGET;TARGET_DIR" "" ${ARGN})
  if(NOT ARG_RUST_TARGET)
    message(FATAL_ERROR "tinygen_add_library: RUST_TARGET is required")
  endif()
  if(NOT ARG_TARGET_DIR)
    set(ARG_TARGET_DIR "${CMAKE_BINARY_DIR}/cargo")
  endif()
  if(ARG_RUST_TARGET STREQUAL "host")
    set(target_args "")
    set(lib "${ARG_TARGET_DIR}/capi/libtinygen_capi.a")
  else()
    set(target_args --target ${ARG_RUST_TARGET})
    set(lib "${ARG_TARGET_DIR}/${ARG_RUST_TARGET}/capi/libtinygen_capi.a")
  endif()
  # Cargo decides what is out of date: it runs on every build (a no-op
  # when nothing changed). The host's RUSTFLAGS must not reach a cross build.
  add_custom_target(${name}_cargo
    COMMAND ${CMAKE_COMMAND} -E env --unset=RUSTFLAGS --unset=CARGO_ENCODED_RUSTFLAGS
            ${TINYGEN_CARGO} build --quiet -p tinygen-capi --profile capi ${target_args}
            --target-dir ${ARG_TARGET_DIR}
    WORKING_DIRECTORY "${TINYGEN_ROOT}"
    BYPRODUCTS "${lib}"
    COMMENT "cargo: tinygen C API for ${ARG_RUST_TARGET}"
    VERBATIM)
  add_library(${name} STATIC IMPORTED GLOBAL)
  set_target_properties(${name} PROPERTIES
    IMPORTED_LOCATION "${lib}"
    INTERFACE_INCLUDE_DIRECTORIES "${TINYGEN_ROOT}/capi/include")
  add_dependencies(${name} ${name}_cargo)
endfunction()

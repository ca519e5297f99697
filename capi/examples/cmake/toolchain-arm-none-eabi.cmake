# Debian's gcc-arm-none-eabi (with libnewlib-arm-none-eabi) for bare-metal
# Cortex-M: cmake -DCMAKE_TOOLCHAIN_FILE=toolchain-arm-none-eabi.cmake ...
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_ASM_COMPILER arm-none-eabi-gcc)
# No linker script yet when CMake tries the compiler: test with a library.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)

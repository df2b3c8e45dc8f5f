// Empty: clang's __clang_cuda_intrinsics.h includes this toolkit header.

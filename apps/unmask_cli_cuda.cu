// The unmask program built with nvcc: adds --device cuda (see unmask_cli.cpp).
#define UNMASK_CLI_CUDA 1
#include "unmask_cli.cpp"

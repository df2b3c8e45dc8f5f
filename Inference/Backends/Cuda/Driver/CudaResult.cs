namespace AspireAi.Inference.Backends.Cuda.Driver;

/// <summary>
/// The CUresult codes of the CUDA driver API (<c>cuda.h</c>) this binding names in errors; any other value is reported by
/// number and by the driver's own <c>cuGetErrorName</c>.
/// </summary>
public enum CudaResult
{
    Success = 0,
    InvalidValue = 1,
    OutOfMemory = 2,
    NotInitialized = 3,
    Deinitialized = 4,
    NoDevice = 100,
    InvalidDevice = 101,
    InvalidImage = 200,
    InvalidContext = 201,
    NoBinaryForGpu = 209,
    UnsupportedPtxVersion = 222,
    InvalidPtx = 218,
    JitCompilerNotFound = 221,
    InvalidSource = 300,
    FileNotFound = 301,
    InvalidHandle = 400,
    NotFound = 500,
    NotReady = 600,
    IllegalAddress = 700,
    LaunchOutOfResources = 701,
    LaunchTimeout = 702,
    PeerAccessAlreadyEnabled = 704,
    MisalignedAddress = 716,
    InvalidAddressSpace = 717,
    InvalidPc = 718,
    LaunchFailed = 719,
    NotPermitted = 800,
    NotSupported = 801,
    StreamCaptureUnsupported = 900,
    StreamCaptureInvalidated = 901,
    StreamCaptureUnmatched = 903,
    StreamCaptureImplicit = 906,
    Unknown = 999,
}

/// <summary>A CUDA driver call that did not return <c>CUDA_SUCCESS</c>: names the call and the result.</summary>
public sealed class CudaException(string call, CudaResult result, string? detail = null)
    : Exception($"{call} failed: {CudaDriver.ErrorName(result)} ({(int)result}){(detail is null ? "" : ": " + detail)}")
{
    public string Call { get; } = call;

    public CudaResult Result { get; } = result;
}

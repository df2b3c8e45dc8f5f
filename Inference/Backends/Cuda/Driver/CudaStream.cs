namespace AspireAi.Inference.Backends.Cuda.Driver;

/// <summary>An ordered queue of device work (<c>CUstream</c>); also where graphs are captured and launched.</summary>
public sealed class CudaStream : IDisposable
{
    /// <summary><c>CU_STREAM_NON_BLOCKING</c>: no implicit ordering with the legacy default stream.</summary>
    private const uint NonBlocking = 1;

    public CudaStream(CudaContext context)
    {
        context.MakeCurrent();
        CudaDriver.Check(CudaDriver.cuStreamCreate(out var handle, NonBlocking), "cuStreamCreate");
        Handle = handle;
    }

    public nint Handle { get; private set; }

    /// <summary>
    /// Kernels built to wait for their predecessor themselves (<see cref="CudaKernel.WaitsForPreviousKernel"/>) are launched
    /// with programmatic stream serialization: each may start while the kernel before it finishes (Hopper and later).
    /// </summary>
    public bool DependentLaunch { get; set; }

    /// <summary>When set, every kernel launched on this stream is timed (a profile of a step; not while capturing a graph).</summary>
    public KernelTimer? Timer { get; set; }

    public void Synchronize() => CudaDriver.Check(CudaDriver.cuStreamSynchronize(Handle), "cuStreamSynchronize");

    /// <summary>Starts recording the work queued on this stream into a graph instead of running it.</summary>
    public void BeginCapture() =>
        CudaDriver.Check(CudaDriver.cuStreamBeginCapture(Handle, CudaStreamCaptureMode.ThreadLocal), "cuStreamBeginCapture");

    /// <summary>Ends the capture begun by <see cref="BeginCapture"/> and instantiates what was recorded.</summary>
    public CudaGraph EndCapture()
    {
        CudaDriver.Check(CudaDriver.cuStreamEndCapture(Handle, out var graph), "cuStreamEndCapture");
        return new CudaGraph(graph);
    }

    public void Dispose()
    {
        if (Handle != 0)
        {
            CudaDriver.Check(CudaDriver.cuStreamDestroy(Handle), "cuStreamDestroy");
            Handle = 0;
        }
    }
}

/// <summary>A timing marker on a stream (<c>CUevent</c>).</summary>
public sealed class CudaEvent : IDisposable
{
    public CudaEvent(CudaContext context)
    {
        context.MakeCurrent();
        CudaDriver.Check(CudaDriver.cuEventCreate(out var handle, 0), "cuEventCreate");
        Handle = handle;
    }

    public nint Handle { get; private set; }

    public void Record(CudaStream stream) => CudaDriver.Check(CudaDriver.cuEventRecord(Handle, stream.Handle), "cuEventRecord");

    public void Synchronize() => CudaDriver.Check(CudaDriver.cuEventSynchronize(Handle), "cuEventSynchronize");

    /// <summary>Milliseconds from <paramref name="start"/> to this event (both recorded and complete).</summary>
    public float ElapsedSince(CudaEvent start)
    {
        CudaDriver.Check(CudaDriver.cuEventElapsedTime(out var ms, start.Handle, Handle), "cuEventElapsedTime");
        return ms;
    }

    public void Dispose()
    {
        if (Handle != 0)
        {
            CudaDriver.Check(CudaDriver.cuEventDestroy(Handle), "cuEventDestroy");
            Handle = 0;
        }
    }
}

/// <summary>
/// A captured and instantiated CUDA graph (<c>CUgraph</c> + <c>CUgraphExec</c>): replays the recorded launches with one
/// call, with the same kernel arguments (so buffers must stay where they were; their contents may change).
/// </summary>
public sealed class CudaGraph : IDisposable
{
    private nint _graph;
    private nint _executable;

    internal CudaGraph(nint graph)
    {
        _graph = graph;
        CudaDriver.Check(CudaDriver.cuGraphInstantiateWithFlags(out _executable, graph, 0), "cuGraphInstantiateWithFlags");
    }

    public void Launch(CudaStream stream) => CudaDriver.Check(CudaDriver.cuGraphLaunch(_executable, stream.Handle), "cuGraphLaunch");

    public void Dispose()
    {
        if (_executable != 0)
        {
            CudaDriver.Check(CudaDriver.cuGraphExecDestroy(_executable), "cuGraphExecDestroy");
            _executable = 0;
        }

        if (_graph != 0)
        {
            CudaDriver.Check(CudaDriver.cuGraphDestroy(_graph), "cuGraphDestroy");
            _graph = 0;
        }
    }
}

using AspireAi.Inference.Backends.Cuda.Driver;

namespace AspireAi.Inference.Backends.Cuda;

/// <summary>cos/sin tables [maxPositions][headDim / 2] computed in double on the host (as the CPU backend's) and uploaded once.</summary>
public sealed class CudaRotaryEmbedding : RotaryEmbedding
{
    internal CudaRotaryEmbedding(CudaContext context, CudaStream stream, RopeSpec spec) : base(spec)
    {
        var pairs = spec.HeadDim / 2;
        var cos = new float[(long)spec.MaxPositions * pairs];
        var sin = new float[cos.Length];
        var frequencies = spec.InverseFrequencies();
        for (var p = 0; p < spec.MaxPositions; p++)
        {
            for (var i = 0; i < pairs; i++)
            {
                var angle = p * frequencies[i];
                cos[(long)p * pairs + i] = (float)Math.Cos(angle);
                sin[(long)p * pairs + i] = (float)Math.Sin(angle);
            }
        }

        Cos = new CudaDeviceBuffer<float>(context, cos.Length);
        Sin = new CudaDeviceBuffer<float>(context, sin.Length);
        Cos.CopyFrom(stream, cos);
        Sin.CopyFrom(stream, sin);
        stream.Synchronize();
    }

    internal CudaDeviceBuffer<float> Cos { get; }

    internal CudaDeviceBuffer<float> Sin { get; }

    public override void Dispose()
    {
        Cos.Dispose();
        Sin.Dispose();
    }
}

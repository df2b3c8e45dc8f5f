namespace AspireAi.Inference.Backends;

/// <summary>A float32 activation matrix owned by a backend: room for <see cref="Rows"/> rows of <see cref="Columns"/> values.</summary>
public abstract class DeviceTensor : IDisposable
{
    protected DeviceTensor(int rows, int columns)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(columns);
        Rows = rows;
        Columns = columns;
    }

    public int Rows { get; }

    public int Columns { get; }

    public abstract void Dispose();
}

namespace AspireAi.Gateway.Replicas;

/// <summary>One upstream instance (an address from service discovery) with its in-flight count and circuit.</summary>
internal sealed class Replica(string address, CircuitBreaker breaker)
{
    private int _outstanding;

    /// <summary>The destination prefix, e.g. <c>http://127.0.0.1:5123/</c>.</summary>
    public string Address { get; } = address;

    /// <summary>A stable hash of the address, for rendezvous hashing (the same on every gateway replica).</summary>
    public ulong AddressHash { get; } = System.IO.Hashing.XxHash3.HashToUInt64(System.Text.Encoding.UTF8.GetBytes(address));

    public CircuitBreaker Breaker { get; } = breaker;

    public int Outstanding => Volatile.Read(ref _outstanding);

    public void Begin() => Interlocked.Increment(ref _outstanding);

    public void End() => Interlocked.Decrement(ref _outstanding);

    public override string ToString() => Address;
}

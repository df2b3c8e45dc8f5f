namespace AspireAi.Gateway.Replicas;

/// <summary>
/// One replica's circuit: closed while it answers; open for <c>BreakSeconds</c> after <c>FailureThreshold</c> failures in a
/// row; then half-open, letting one trial request through — its success closes the circuit, its failure opens it again.
/// Written here rather than with Polly's breaker because the load balancer must <em>ask</em> whether a replica is open while
/// choosing among replicas; Polly's breaker only answers by throwing on execution.
/// </summary>
internal sealed class CircuitBreaker(int failureThreshold, TimeSpan breakDuration, TimeProvider time)
{
    private readonly Lock _lock = new();
    private int _failures;
    private long _openUntil; // timestamp; 0 = closed
    private bool _trialInFlight;

    public bool IsOpen
    {
        get
        {
            lock (_lock)
            {
                return _openUntil != 0 && (time.GetTimestamp() < _openUntil || _trialInFlight);
            }
        }
    }

    /// <summary>Whether a request may go to the replica now; in the half-open state only the first caller gets the trial.</summary>
    public bool TryAcquire()
    {
        lock (_lock)
        {
            if (_openUntil == 0)
            {
                return true;
            }

            if (time.GetTimestamp() < _openUntil || _trialInFlight)
            {
                return false;
            }

            _trialInFlight = true;
            return true;
        }
    }

    public void OnSuccess()
    {
        lock (_lock)
        {
            (_failures, _openUntil, _trialInFlight) = (0, 0, false);
        }
    }

    public void OnFailure()
    {
        lock (_lock)
        {
            _failures++;
            if (_trialInFlight || _failures >= failureThreshold)
            {
                _openUntil = time.GetTimestamp() + (long)(breakDuration.TotalSeconds * time.TimestampFrequency);
                _trialInFlight = false;
            }
        }
    }
}

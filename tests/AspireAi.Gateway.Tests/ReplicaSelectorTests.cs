using AspireAi.Gateway.Replicas;

namespace AspireAi.Gateway.Tests;

/// <summary>The balancing rules themselves: least outstanding, affinity within the slack, circuits.</summary>
public sealed class ReplicaSelectorTests
{
    private sealed class ManualClock : TimeProvider
    {
        public long Ticks { get; set; } = 1;
        public override long GetTimestamp() => Ticks;
        public override long TimestampFrequency => TimeSpan.TicksPerSecond;
        public void Advance(TimeSpan by) => Ticks += by.Ticks;
    }

    private static Replica[] Replicas(TimeProvider clock, params int[] outstanding) => [.. outstanding.Select((n, i) =>
    {
        var replica = new Replica($"http://10.0.0.{i}:80/", new CircuitBreaker(2, TimeSpan.FromSeconds(10), clock));
        for (var k = 0; k < n; k++)
        {
            replica.Begin();
        }

        return replica;
    })];

    [Fact]
    public void The_least_busy_replica_is_chosen_and_excluded_or_open_ones_are_skipped()
    {
        var clock = new ManualClock();
        var replicas = Replicas(clock, 3, 1, 2);
        Assert.Same(replicas[1], ReplicaSelector.Select(replicas, null, 2, []));
        Assert.Same(replicas[2], ReplicaSelector.Select(replicas, null, 2, [replicas[1]]));

        replicas[2].Breaker.OnFailure();
        replicas[2].Breaker.OnFailure(); // threshold 2: open
        Assert.Same(replicas[0], ReplicaSelector.Select(replicas, null, 2, [replicas[1]]));
        Assert.Null(ReplicaSelector.Select(replicas, null, 2, [replicas[0], replicas[1]]));
    }

    [Fact]
    public void An_affinity_key_keeps_its_replica_until_it_is_more_than_the_slack_busier()
    {
        var clock = new ManualClock();
        var replicas = Replicas(clock, 0, 0, 0);
        var preferred = ReplicaSelector.Select(replicas, 42UL, 2, [])!;
        for (var i = 0; i < 10; i++)
        {
            Assert.Same(preferred, ReplicaSelector.Select(replicas, 42UL, 2, []));
        }

        preferred.Begin();
        preferred.Begin();
        Assert.Same(preferred, ReplicaSelector.Select(replicas, 42UL, 2, [])); // 2 more than the others: still within the slack
        preferred.Begin();
        Assert.NotSame(preferred, ReplicaSelector.Select(replicas, 42UL, 2, []));
    }

    [Fact]
    public void An_open_circuit_lets_one_trial_through_after_the_break_and_closes_on_its_success()
    {
        var clock = new ManualClock();
        var breaker = new CircuitBreaker(2, TimeSpan.FromSeconds(10), clock);
        breaker.OnFailure();
        Assert.True(breaker.TryAcquire());
        breaker.OnFailure();
        Assert.True(breaker.IsOpen);
        Assert.False(breaker.TryAcquire());

        clock.Advance(TimeSpan.FromSeconds(11));
        Assert.False(breaker.IsOpen);
        Assert.True(breaker.TryAcquire());  // the trial
        Assert.False(breaker.TryAcquire()); // only one at a time
        breaker.OnFailure();                // the trial failed: open again
        Assert.True(breaker.IsOpen);

        clock.Advance(TimeSpan.FromSeconds(11));
        Assert.True(breaker.TryAcquire());
        breaker.OnSuccess();
        Assert.False(breaker.IsOpen);
        Assert.True(breaker.TryAcquire());
        Assert.True(breaker.TryAcquire());
    }
}

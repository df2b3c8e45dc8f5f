namespace AspireAi.Gateway.Replicas;

/// <summary>
/// Picks the replica for a request: the one with the fewest requests in flight, unless the request has an affinity key (a
/// hash of its prompt's first characters), whose preferred replica — by rendezvous hashing, so every gateway replica
/// prefers the same one and only 1/N of keys move when a replica comes or goes — is used while it has at most
/// <c>AffinitySlack</c> more requests in flight than the least busy one. Requests that share a long prefix then land where
/// that prefix is already in the KV cache, without letting one hot prefix overload its replica.
/// </summary>
internal static class ReplicaSelector
{
    public static Replica? Select(IReadOnlyList<Replica> replicas, ulong? affinity, int slack, IReadOnlyCollection<Replica> exclude)
    {
        Replica? least = null, preferred = null;
        ulong best = 0;
        var ties = 0;
        foreach (var replica in replicas)
        {
            if (exclude.Contains(replica) || replica.Breaker.IsOpen)
            {
                continue;
            }

            if (least is null || replica.Outstanding < least.Outstanding)
            {
                (least, ties) = (replica, 1);
            }
            else if (replica.Outstanding == least.Outstanding && Random.Shared.Next(++ties) == 0)
            {
                least = replica; // reservoir sampling: an even spread among equally idle replicas
            }

            if (affinity is { } key && (preferred is null || Score(key, replica) > best))
            {
                (preferred, best) = (replica, Score(key, replica));
            }
        }

        return preferred is not null && preferred.Outstanding <= least!.Outstanding + slack ? preferred : least;
    }

    private static ulong Score(ulong key, Replica replica)
    {
        // SplitMix64 finaliser over the pair: a well-mixed weight per (key, replica).
        var z = key ^ replica.AddressHash;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}

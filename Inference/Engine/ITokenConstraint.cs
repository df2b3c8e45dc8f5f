namespace AspireAi.Inference.Engine;

/// <summary>
/// Restricts the next token of one sequence (constrained decoding). The engine calls <see cref="MaskLogits"/> before each
/// sample and <see cref="Accept"/> after; one instance per sequence, used only by the engine thread.
/// </summary>
public interface ITokenConstraint
{
    /// <summary>
    /// Sets the logits of every token that cannot come next to −∞. <paramref name="remainingTokens"/> counts the tokens still
    /// allowed after this one, so a constraint can steer towards an end that fits.
    /// </summary>
    /// <returns>false when no token is allowed (the constraint is complete: the sequence ends).</returns>
    bool MaskLogits(Span<float> logits, int remainingTokens);

    /// <summary>Advances past <paramref name="tokenId"/>.</summary>
    void Accept(int tokenId);

    /// <summary>Whether the output so far is complete (the end-of-generation token is allowed).</summary>
    bool IsComplete { get; }

    /// <summary>Whether nothing can follow: the sequence ends without waiting for an end-of-generation token.</summary>
    bool IsTerminated { get; }
}

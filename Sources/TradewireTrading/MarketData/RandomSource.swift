import Foundation

/// SplitMix64: seeds and hashes (Steele, Lea & Flood 2014).
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    @inline(__always)
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return Self.mix(state)
    }

    /// The SplitMix64 finaliser: a strong 64-bit mixing function.
    @inline(__always)
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Combines three values into one well-mixed seed.
    @inline(__always)
    static func combine(_ a: UInt64, _ b: UInt64, _ c: UInt64) -> UInt64 {
        mix(a ^ mix(b &+ 0x9E37_79B9_7F4A_7C15 ^ mix(c &+ 0x632B_E59B_D9B4_E019)))
    }
}

/// xoshiro256** (Blackman & Vigna): a fast, high-quality generator, seeded through SplitMix64.
struct Xoshiro256StarStar: RandomNumberGenerator {
    private var s0, s1, s2, s3: UInt64
    private var spareNormal: Double?

    init(seed: UInt64) {
        var sm = SplitMix64(seed: seed)
        s0 = sm.next()
        s1 = sm.next()
        s2 = sm.next()
        s3 = sm.next()
        spareNormal = nil
    }

    @inline(__always)
    mutating func next() -> UInt64 {
        let result = rotl(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = rotl(s3, 45)
        return result
    }

    @inline(__always)
    private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// Uniform in [0, 1) with 53 random bits.
    @inline(__always)
    mutating func uniform() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// Triangular noise on (−1, 1): the sum of two uniforms minus 1 (cheap, bell-shaped,
    /// standard deviation ≈ 0.408).
    @inline(__always)
    mutating func triangular() -> Double {
        uniform() + uniform() - 1
    }

    /// Standard normal (Marsaglia's polar method; the second value is kept for the next call).
    mutating func normal() -> Double {
        if let spare = spareNormal {
            spareNormal = nil
            return spare
        }
        while true {
            let u = 2 * uniform() - 1
            let v = 2 * uniform() - 1
            let s = u * u + v * v
            if s > 0 && s < 1 {
                let factor = (-2 * log(s) / s).squareRoot()
                spareNormal = v * factor
                return u * factor
            }
        }
    }
}

/// A stable 64-bit FNV-1a hash of a string's UTF-8 (unlike `Hasher`, the same in every process).
func stableHash(_ text: String) -> UInt64 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in text.utf8 {
        hash ^= UInt64(byte)
        hash &*= 0x0000_0100_0000_01B3
    }
    return hash
}

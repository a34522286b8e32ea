import Foundation
import TradewireJSON
import TradewirePipeline
import TradewireRPC
import TradewireTrading

/// What a risk stage call costs the daemon in JSON work alone, for N signals: encoding the
/// `stage.handle` request (input, output, account) and parsing and decoding the reply.
/// `make bench` sets these next to the measured call round trip.
enum StageCodecBenchmarks {
    static func run(symbolCounts: [Int]) {
        print("stage call codec (release, median of 200): symbols encode_us decode_us bytes")
        for count in symbolCounts {
            let signals = (0..<count).map { i in
                TradingSignal(
                    id: "it-1-S\(i)", symbol: "S\(i)", action: .buy, strategyName: "TrendFollowing", confidence: 0.7,
                    price: 100 + Double(i), stopLoss: 98, takeProfit: 104, reasoning: "fast MA above slow MA",
                    qty: 10, riskAmount: 20, approved: true)
            }
            let call = StageCall(
                stage: .risk, iteration: 1, iterationID: "it-1", deadline: .now, deadlineDate: Date(), dryRun: true,
                input: .signals(signals), output: .signals(signals),
                account: StageAccount(
                    cash: 100_000, equity: 100_000, positions: [:], budgetDay: "2026-11-30", budgetUsed: 0,
                    budgetLimit: 5000))
            var encodeTimes: [Double] = []
            var decodeTimes: [Double] = []
            var bytes = 0
            let reply = Array(
                (#"{"jsonrpc":"2.0","id":"c-1","result":"# + String(decoding: JSONWriter.encode(signals), as: UTF8.self)
                    + "}").utf8)
            for _ in 0..<200 {
                var start = ContinuousClock.now
                var writer = JSONWriter(reservingCapacity: 1024)
                writer.beginObject()
                writer.field("registration", "r-1")
                call.encodeFields(to: &writer)
                writer.endObject()
                bytes = writer.bytes.count
                encodeTimes.append(microseconds(ContinuousClock.now - start))
                start = ContinuousClock.now
                if case .single(.reply(let parsed)) = RPCMessageParser.parse(reply),
                    case .result(let json) = parsed.outcome
                {
                    _ = try? StageValue.decode(json, for: .risk)
                }
                decodeTimes.append(microseconds(ContinuousClock.now - start))
            }
            print(
                "stage-codec symbols=\(count) encode_us=\(fixed(median(encodeTimes))) decode_us=\(fixed(median(decodeTimes))) bytes=\(bytes)"
            )
        }
    }

    private static func microseconds(_ d: Duration) -> Double {
        Double(d.components.seconds) * 1e6 + Double(d.components.attoseconds) / 1e12
    }

    private static func fixed(_ value: Double) -> String { String(format: "%.1f", value) }
}

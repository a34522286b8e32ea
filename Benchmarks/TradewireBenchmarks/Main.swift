import Foundation
import Logging
import TradewireBus
import TradewireJSON
import TradewirePipeline
import TradewireTrading

/// `make bench`: throughput and latency figures, printed as a table. Not a test: nothing here
/// asserts a number.
///
///   TradewireBenchmarks in-process           bus publish rates and full iterations in both modes
///   TradewireBenchmarks socket --socket PATH load a running daemon over its socket
///   TradewireBenchmarks stage-codec N…       JSON cost of a risk stage call with N signals
///   TradewireBenchmarks metrics-cost         what recording the publish histogram costs
@main
struct Benchmarks {
    static func main() async throws {
        let arguments = Array(CommandLine.arguments.dropFirst())
        switch arguments.first {
        case "in-process", nil:
            await InProcessBenchmarks.run()
        case "socket":
            guard let i = arguments.firstIndex(of: "--socket"), i + 1 < arguments.count else {
                FileHandle.standardError.write(Data("usage: TradewireBenchmarks socket --socket PATH\n".utf8))
                exit(2)
            }
            try await SocketBenchmarks.run(socketPath: arguments[i + 1])
        case "stage-codec":
            StageCodecBenchmarks.run(symbolCounts: arguments.dropFirst().compactMap { Int($0) })
        case "metrics-cost":
            MetricsCostBenchmarks.run()
        default:
            FileHandle.standardError.write(
                Data("usage: TradewireBenchmarks [in-process | socket --socket PATH]\n".utf8))
            exit(2)
        }
    }
}

/// Seconds elapsed while running `body`.
func measure(_ body: () async throws -> Void) async rethrows -> Double {
    let start = ContinuousClock.now
    try await body()
    let d = ContinuousClock.now - start
    return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted[sorted.count / 2]
}

func row(_ columns: [String], widths: [Int]) -> String {
    zip(columns, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
}

enum InProcessBenchmarks {
    static func run() async {
        LoggingSystem.bootstrap { _ in SwiftLogNoOpLogHandler() }
        let widths = [46, 16, 22, 8]
        say("In-process (release build, median of 5 runs)")
        say(row(["benchmark", "result", "reference", "ratio"], widths: widths))
        for handlers in [1, 10] {
            let rate = await publishRate(handlers: handlers)
            let reference = handlers == 1 ? 61_000.0 : 18_000.0
            say(
                row(
                    [
                        "bus publish → \(handlers) async no-op handler\(handlers == 1 ? "" : "s")",
                        String(format: "%.0f /s", rate), String(format: "%.0f /s (Python)", reference),
                        String(format: "%.1f×", rate / reference),
                    ], widths: widths))
        }
        let matching = await newTypeAgainstLongPatterns()
        say(
            row(
                [
                    "new event type vs 10 000 long glob patterns", String(format: "%.2f ms", matching * 1000),
                    "140 ms (level 1)", String(format: "%.0f×", 0.140 / matching),
                ], widths: widths))
        for mode in [OrchestratorMode.async, .sync] {
            for symbols in [5, 100, 1000, 10_000] {
                let seconds = await iteration(mode: mode, symbols: symbols)
                let target = symbols == 1000 && mode == .async ? "< 250 ms" : symbols == 10_000 ? "< 2 s" : ""
                say(
                    row(
                        [
                            "iteration \(symbols) symbols × 252 bars (\(mode.rawValue))",
                            String(format: "%.1f ms", seconds * 1000), target, "",
                        ], widths: widths))
            }
        }
    }

    static func publishRate(handlers: Int) async -> Double {
        let bus = EventBus()
        for i in 0..<handlers {
            bus.subscribe(try! EventPattern("bench"), owner: .inProcess("h\(i)"), handler: .async { _ in })
        }
        let count = handlers == 1 ? 200_000 : 50_000
        let payload = JSONValue("x")
        var rates: [Double] = []
        for _ in 0..<5 {
            let seconds = await measure {
                for _ in 0..<count { await bus.publish("bench", payload: payload) }
            }
            rates.append(Double(count) / seconds)
        }
        return median(rates)
    }

    /// One publish of a never-seen event type while 10 000 subscriptions hold 128-character
    /// patterns of the backtracking matcher's worst shape (`*aaa…ab`): the whole match list is
    /// computed for it (level 1 took 140 ms, under the bus lock).
    static func newTypeAgainstLongPatterns() async -> Double {
        let bus = EventBus()
        for i in 0..<10_000 {
            let pattern = "*" + String(repeating: "a", count: 100) + "b" + String(i % 10)
            bus.subscribe(try! EventPattern(pattern), owner: .client(connection: i), handler: .sync { _ in })
        }
        var times: [Double] = []
        for n in 0..<25 {
            let type = String(repeating: "a", count: 120) + "-\(n)"
            times.append(await measure { _ = bus.publishRecording(type, payload: JSONValue.null) })
        }
        return median(times)
    }

    static func iteration(mode: OrchestratorMode, symbols: Int) async -> Double {
        let names = (0..<symbols).map { "B" + String($0) }
        var times: [Double] = []
        for run in 0..<5 {
            // Fresh agents each run: no data cache, the whole pipeline from data generation on.
            let agents = TradingAgents(
                config: TradingConfig(), provider: SimulatedMarketDataProvider(seed: UInt64(run)),
                logger: Logger(label: "bench"))
            let bus = EventBus()
            let orchestrator: any Orchestrator =
                mode == .async
                ? EventDrivenOrchestrator(bus: bus, agents: agents, defaultSymbols: names)
                : SequentialOrchestrator(bus: bus, agents: agents, defaultSymbols: names)
            let seconds = await measure { _ = try? await orchestrator.run(IterationRequest()) }
            times.append(seconds)
        }
        return median(times)
    }
}

/// Prints a line and flushes it at once (the table streams into pipes as it is measured).
func say(_ line: String) {
    print(line)
    fflush(nil)
}

import Foundation
import Logging
import TradewireBus
import TradewireJSON
import TradewirePipeline
import TradewireTrading

/// `make bench`: throughput and latency figures, printed as a table. Not a test: nothing here
/// asserts a number. The bus publish rows are the ordo-one/benchmark suite in
/// Benchmarks/BusPublish (allocations and percentiles per publish).
///
///   TradewireBenchmarks iterations           full pipeline iterations in both modes
///   TradewireBenchmarks socket --socket PATH load a running daemon over its socket
///   TradewireBenchmarks stage-codec N…       JSON cost of a risk stage call with N signals
///   TradewireBenchmarks metrics-cost         what recording the publish histogram costs
@main
struct Benchmarks {
    static func main() async throws {
        let arguments = Array(CommandLine.arguments.dropFirst())
        switch arguments.first {
        case "iterations":
            await IterationBenchmarks.run()
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
                Data(
                    "usage: TradewireBenchmarks [iterations | socket --socket PATH | stage-codec N… | metrics-cost]\n"
                        .utf8))
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

/// Full iterations of the trading pipeline: seconds-long runs, five of each, which do not fit
/// ordo-one/benchmark's many-samples model.
enum IterationBenchmarks {
    static func run() async {
        LoggingSystem.bootstrap { _ in SwiftLogNoOpLogHandler() }
        let widths = [46, 16, 10]
        say("Iterations (release build, median of 5 runs)")
        say(row(["benchmark", "result", "target"], widths: widths))
        for mode in [OrchestratorMode.async, .sync] {
            for symbols in [5, 100, 1000, 10_000] {
                let seconds = await iteration(mode: mode, symbols: symbols)
                let target = symbols == 1000 && mode == .async ? "< 250 ms" : symbols == 10_000 ? "< 2 s" : ""
                say(
                    row(
                        [
                            "iteration \(symbols) symbols × 252 bars (\(mode.rawValue))",
                            String(format: "%.1f ms", seconds * 1000), target,
                        ], widths: widths))
            }
        }
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

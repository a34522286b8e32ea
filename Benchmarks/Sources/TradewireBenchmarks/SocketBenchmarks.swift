import Foundation
import Synchronization
import TradewireJSON
import TradewireTesting

#if canImport(Glibc)
    import Glibc
#endif

enum SocketBenchmarks {
    static func run(socketPath: String) async throws {
        let widths = [48, 44]
        say(row(["tradewired over its socket (Swift load generator)", "result (release build)"], widths: widths))
        let (p50, p99) = try ping(socketPath, count: 20_000)
        say(
            row(
                ["ping round trip, 20000 sequential", String(format: "p50 %.1f µs  p99 %.1f µs", p50, p99)],
                widths: widths))
        for subscribers in [1, 10] {
            let (publishRate, delivered) = try publish(
                socketPath, count: subscribers == 1 ? 200_000 : 50_000, subscribers: subscribers)
            say(
                row(
                    [
                        "publish, 256 in flight → \(subscribers) subscriber\(subscribers == 1 ? "" : "s")",
                        String(format: "%.0f events/s delivered (%.0f publish/s)", delivered, publishRate),
                    ], widths: widths))
        }
        for symbols in [5, 100, 1000] {
            let ms = try runPipeline(socketPath, symbols: symbols)
            say(row(["run_pipeline \(symbols) symbols (median of 5)", String(format: "%.1f ms", ms)], widths: widths))
        }
    }

    static func ping(_ path: String, count: Int) throws -> (Double, Double) {
        let connection = try LineSocket(path: path)
        let request = Array(#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#.utf8) + [10]
        for _ in 0..<500 {
            connection.write(request)
            _ = connection.readLine()
        }
        var samples: [Double] = []
        samples.reserveCapacity(count)
        for _ in 0..<count {
            let start = ContinuousClock.now
            connection.write(request)
            _ = connection.readLine()
            let d = ContinuousClock.now - start
            samples.append(Double(d.components.attoseconds) / 1e12 + Double(d.components.seconds) * 1e6)
        }
        samples.sort()
        return (samples[count / 2], samples[count * 99 / 100])
    }

    /// Pipelined publishes (≤ 256 in flight) of ~100-byte data; returns publish/s and events/s delivered.
    static func publish(_ path: String, count: Int, subscribers: Int) throws -> (Double, Double) {
        let type = "bench.\(getpid()).\(subscribers)"
        var readers: [LineSocket] = []
        for _ in 0..<subscribers {
            let c = try LineSocket(path: path)
            c.write(
                Array(#"{"jsonrpc":"2.0","id":1,"method":"subscribe","params":{"event_type":"\#(type)"}}"#.utf8) + [10])
            _ = c.readLine()
            readers.append(c)
        }
        let publisher = try LineSocket(path: path)
        let data = String(repeating: "x", count: 80)
        let line =
            Array(
                #"{"jsonrpc":"2.0","id":1,"method":"publish","params":{"event_type":"\#(type)","data":{"p":"\#(data)"}}}"#
                    .utf8) + [10]
        var batch: [UInt8] = []
        for _ in 0..<16 { batch += line }
        let answered = LineCounter()
        let delivered = LineCounter()
        let start = ContinuousClock.now
        // Blocking readers get threads of their own (a GCD pool would run out of them).
        let readersDone = DispatchSemaphore(value: 0)
        for reader in readers {
            Thread.detachNewThread {
                let n = reader.countLines(upTo: count)
                delivered.value.add(n, ordering: .relaxed)
                readersDone.signal()
            }
        }
        let responseDone = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            _ = publisher.countLines(upTo: count, progress: answered)
            responseDone.signal()
        }
        // Writer: at most 256 requests in flight (sent but not answered), 16 lines per write.
        var sent = 0
        while sent < count {
            while sent + 16 - answered.value.load(ordering: .acquiring) > 256 { sched_yield() }
            publisher.write(batch)
            sent += 16
        }
        responseDone.wait()
        let publishSeconds = (ContinuousClock.now - start).seconds
        for _ in readers { _ = readersDone.wait(timeout: .now() + 60) }
        let deliverSeconds = (ContinuousClock.now - start).seconds
        return (Double(count) / publishSeconds, Double(delivered.value.load(ordering: .relaxed)) / deliverSeconds)
    }

    static func runPipeline(_ path: String, symbols: Int) throws -> Double {
        let connection = try LineSocket(path: path)
        let names = (0..<symbols).map { "\"R\($0)\"" }.joined(separator: ",")
        let request =
            Array(
                #"{"jsonrpc":"2.0","id":1,"method":"run_pipeline","params":{"symbols":[\#(names)],"dry_run":true}}"#
                    .utf8) + [10]
        var samples: [Double] = []
        for _ in 0..<5 {
            let start = ContinuousClock.now
            connection.write(request)
            _ = connection.readLine()
            samples.append((ContinuousClock.now - start).seconds * 1000)
        }
        return median(samples)
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

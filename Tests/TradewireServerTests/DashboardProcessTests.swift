import Foundation
import Testing
import TradewireJSON
import TradewireTesting

/// The dashboard of `tradewired --http` as a process (PROTOCOL §12): the page, its read-only
/// `/api/` routes, and what a restarted daemon still shows from its journal.
@Suite(.serialized) struct DashboardProcessTests {
    static let symbols: JSONValue = ["AAPL", "MSFT", "GOOGL", "AMZN", "TSLA", "NVDA"]

    /// GET `path`: the status, the headers and the body.
    func get(_ port: Int, _ path: String, method: String = "GET") throws -> (Int, [String: String], String) {
        let connection = try HTTPConnection(port: port)
        let head = try #require(connection.request(method, path))
        return (head.status, head.headers, connection.readBody())
    }

    func json(_ port: Int, _ path: String) throws -> (Int, JSONValue) {
        let (status, headers, body) = try get(port, path)
        #expect(headers["content-type"] == "application/json; charset=utf-8", "\(path)")
        return (status, try JSONParser.parse(body))
    }

    @Test func thePageAndItsAPIAreServedReadOnly() async throws {
        try await HTTPProcessTests().withHTTPDaemon("hd") { _, port in
            let (status, headers, page) = try get(port, "/")
            #expect(status == 200 && headers["content-type"] == "text/html; charset=utf-8")
            #expect(headers["content-security-policy"]?.hasPrefix("default-src 'self'") == true)
            #expect(page.contains("<title>tradewired</title>") && page.utf8.count <= 150 * 1024)
            // No address but the SVG namespace (a name, never fetched): nothing comes from elsewhere.
            let addresses = page.replacingOccurrences(of: "http://www.w3.org/2000/svg", with: "")
            #expect(!addresses.contains("http://") && !addresses.contains("https://") && !addresses.contains("//cdn"))

            for path in [
                "/api/status", "/api/pipeline", "/api/iterations", "/api/portfolio", "/api/equity", "/api/consumers",
                "/api/dead_letters",
            ] {
                let (code, body) = try json(port, path)
                #expect(code == 200 && body.objectValue != nil, "\(path): \(body)")
                for method in ["POST", "PUT", "DELETE", "PATCH"] {
                    let (refused, headers, _) = try get(port, path, method: method)
                    #expect(refused == 405 && headers["allow"] == "GET", "\(method) \(path)")
                }
            }
            let (missing, error) = try json(port, "/api/nothing")
            #expect(missing == 404 && error["error"]?["type"] == "not_found")
            let (bad, limit) = try json(port, "/api/iterations?limit=1000")
            #expect(bad == 400 && limit["error"]?["type"] == "invalid_params")
            let (unknown, iteration) = try json(port, "/api/iterations/it-404")
            #expect(unknown == 404 && iteration["error"]?["type"] == "unknown_iteration")
        }
    }

    @Test func aRestartedDaemonShowsItsIterationsAndFillsFromTheJournal() async throws {
        let directory = temporaryDataDirectory("dash")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var run: JSONValue = .null
        var equity: JSONValue = .null
        try await HTTPProcessTests().withHTTPDaemon("hj", arguments: ["--data-dir", directory]) { daemon, _ in
            let client = ScriptedMember(socket: try LineSocket(path: daemon.socketPath)) { _ in .ignore }
            run =
                await client.request(
                    "run_pipeline", ["symbols": Self.symbols, "strategy": "TrendFollowing"], timeout: 120)?["result"]
                ?? .null
            equity = await client.request("get_portfolio")?["result"]?["equity"] ?? .null
        }
        let id = try #require(run["iteration_id"]?.stringValue)
        let executed = run["execution_results"]?.arrayValue?.filter { $0["executed"] == true }.count ?? 0
        try await HTTPProcessTests().withHTTPDaemon("hj", arguments: ["--data-dir", directory]) { _, port in
            let (_, list) = try json(port, "/api/iterations")
            let row = try #require(list["iterations"]?.arrayValue?.first)
            #expect(row["iteration_id"] == JSONValue(id) && row["symbols_count"] == 6)
            #expect(row["signals"] == JSONValue(run["signals"]?.arrayValue?.count ?? -1))
            #expect(row["approved"] == JSONValue(run["approved_signals"]?.arrayValue?.count ?? -1))
            #expect(row["rejected"] == JSONValue(run["rejected_signals"]?.arrayValue?.count ?? -1))
            #expect(row["executed"] == JSONValue(executed))

            let (_, detail) = try json(port, "/api/iterations/\(id)")
            #expect(detail["source"] == "journal" && detail["reasons_recorded"] == false)
            let decisions = try #require(detail["decisions"]?.arrayValue)
            #expect(decisions.count == run["signals"]?.arrayValue?.count)
            for signal in run["approved_signals"]?.arrayValue ?? [] {
                #expect(decisions.first { $0["signal_id"] == signal["id"] }?["approved"] == true)
            }

            let (_, curve) = try json(port, "/api/equity")
            #expect(curve["fills"] == JSONValue(executed) && curve["equity"] == equity)
            #expect(curve["points"]?.arrayValue?.last?["equity"] == equity)
        }
    }
}

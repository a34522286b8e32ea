import Testing

@testable import TradewireHTTP

@Suite struct HTTPAddressTests {
    @Test(arguments: [
        ("127.0.0.1:9464", "127.0.0.1", 9464),
        ("127.1.2.3:0", "127.1.2.3", 0),
        ("[::1]:8080", "::1", 8080),
        ("localhost:65535", "localhost", 65535),
        ("LOCALHOST:1", "LOCALHOST", 1),
    ])
    func loopbackAddressesNeedNoPermission(text: String, host: String, port: Int) throws {
        let address = try HTTPAddress.parse(text, allowRemote: false).get()
        #expect(address.host == host && address.port == port && address.isLoopback)
        #expect(address.description == text)
    }

    @Test(arguments: ["0.0.0.0:9464", "[::]:80", "10.1.2.3:80", "example.com:80", "[::ffff:127.0.0.1]:80"])
    func otherAddressesNeedAllowRemote(text: String) throws {
        guard case .failure(let error) = HTTPAddress.parse(text, allowRemote: false) else {
            Issue.record("\(text) was accepted")
            return
        }
        #expect(error.description.contains("add --http-allow-remote"))
        #expect(error.description.contains(text))
        let allowed = try HTTPAddress.parse(text, allowRemote: true).get()
        #expect(!allowed.isLoopback)
    }

    @Test(arguments: [
        ("", "must be ADDR:PORT"),
        ("9464", "must be ADDR:PORT"),
        (":9464", "must be ADDR:PORT"),
        ("127.0.0.1:", "needs a port in 0...65535"),
        ("127.0.0.1:65536", "needs a port in 0...65535"),
        ("127.0.0.1:+80", "needs a port in 0...65535"),
        ("127.0.0.1:0080x", "needs a port in 0...65535"),
        ("::1:80", "needs an IPv6 address in brackets"),
        ("[::1]80", "must be ADDR:PORT"),
        ("[nonsense]:80", "no valid IPv6 address"),
        ("under_score:80", "neither an IPv4 address nor a host name"),
        ("-lead.example:80", "neither an IPv4 address nor a host name"),
    ])
    func malformedValuesAreRefusedPrecisely(text: String, message: String) {
        guard case .failure(let error) = HTTPAddress.parse(text, allowRemote: true) else {
            Issue.record("\(text) was accepted")
            return
        }
        #expect(error.description.hasPrefix("--http "))
        #expect(error.description.contains(message), "\(error.description)")
    }
}

import HTTPTypes
import Hummingbird
import NIOCore

/// The dashboard page served at `/` (PROTOCOL §12): one self-contained HTML file
/// (`Dashboard/dashboard.html`, inline CSS and script, no network but this daemon's own
/// `/api/` routes and `/events`), embedded in the binary so it is served from any working
/// directory and after `make install`.
enum DashboardPage {
    /// The page's bytes.
    static let bytes: [UInt8] = PackageResources.dashboard_html

    /// What the page may load: only this origin (its inline style and script included).
    static let contentSecurityPolicy =
        "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
        + "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    static func response() -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/html; charset=utf-8"
        headers[.cacheControl] = "no-cache"
        headers[.contentSecurityPolicy] = contentSecurityPolicy
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}

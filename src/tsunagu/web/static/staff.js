// The store screen's camera: where the browser has a barcode detector (Chrome on Android and
// ChromeOS, Safari 17+), the button reads a member card's barcode or the app's QR code into
// the look-up box and searches. Typing always works.
"use strict";

(() => {
  const button = document.getElementById("scan");
  const video = document.getElementById("camera");
  if (!("BarcodeDetector" in window) || !navigator.mediaDevices?.getUserMedia) return;
  button.hidden = false;
  let stream = null;
  button.addEventListener("click", async () => {
    if (stream) return stop();
    const detector = new BarcodeDetector({ formats: ["qr_code", "code_128", "ean_13", "codabar"] });
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
    video.srcObject = stream;
    video.hidden = false;
    await video.play();
    const look = async () => {
      if (!stream) return;
      const found = await detector.detect(video).catch(() => []);
      if (found.length) {
        document.getElementById("q").value = found[0].rawValue;
        stop();
        document.getElementById("lookup").submit();
      } else requestAnimationFrame(look);
    };
    look();
  });
  function stop() {
    stream?.getTracks().forEach((track) => track.stop());
    stream = null;
    video.hidden = true;
  }
})();

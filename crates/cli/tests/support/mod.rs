pub mod calibration;
pub mod python;
